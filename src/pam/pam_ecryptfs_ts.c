/*
 * pam_ecryptfs_ts.so: ecryptfs-ts at login, logout and password change, in the place of
 * ecryptfs-utils' pam_ecryptfs.so (installed by `src/pam/pam-install.sh`, a pam-auth-update
 * profile; see README "Login (PAM)").
 *
 *   auth     optional pam_ecryptfs_ts.so [hook=PATH] [node=PATH] [bin=DIR] [timeout=SECONDS]
 *   session  optional pam_ecryptfs_ts.so ...
 *   password optional pam_ecryptfs_ts.so ...
 *
 * The work is the hook script's (src/pam/pam-ecryptfs-ts.sh: unwrap at auth, mount at session
 * open, the last session unmounts, re-wrap at a password change); this module is what a script
 * cannot be: it gets the secrets from PAM (PAM_AUTHTOK, PAM_OLDAUTHTOK, or the conversation:
 * "Encryption passphrase: " for a wrapping-independent (-w) passphrase, as pam_ecryptfs asks),
 * hands them to the hook on a pipe (never argv or the environment), runs the hook with a clean
 * environment (nothing from the PAM environment or the caller's), kills it (its whole process
 * group) after `timeout` seconds, and shows the hook's messages to the user through the
 * conversation and to the administrator in syslog and /var/log/ecryptfs-ts.log (root only; under
 * /run when /var/log is not writable).
 *
 * It never fails or blocks the stack, like pam_ecryptfs: every result is PAM_SUCCESS, or
 * PAM_IGNORE when it has nothing to do or fails itself.
 *
 * Hook protocol: argv = HOOK NODE BIN; env = PAM_TYPE, PAM_USER, PAM_SERVICE, PATH (fixed);
 * stdin = the secrets, each NUL-terminated (auth: the password or passphrase; password: OLD, NEW);
 * stdout = lines "info TEXT" / "error TEXT" (to the user) and "log TEXT" (to the logs).
 */
#define _GNU_SOURCE
#define PAM_SM_AUTH
#define PAM_SM_SESSION
#define PAM_SM_PASSWORD
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#define DEFAULT_HOOK "/usr/lib/ecryptfs-ts/pam-ecryptfs-ts"
#define DEFAULT_NODE "/usr/bin/node"
#define DEFAULT_TIMEOUT 5
#define SAFE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define LOG_FILE "/var/log/ecryptfs-ts.log"
#define LOG_FILE_RUN "/run/ecryptfs-ts.log"

struct opts {
	const char *hook, *node, *bin;
	int timeout;
};

static void parse_opts(pam_handle_t *pamh, int argc, const char **argv, struct opts *o)
{
	o->hook = DEFAULT_HOOK;
	o->node = DEFAULT_NODE;
	o->bin = "";
	o->timeout = DEFAULT_TIMEOUT;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "hook=", 5) == 0 && argv[i][5] == '/')
			o->hook = argv[i] + 5;
		else if (strncmp(argv[i], "node=", 5) == 0 && argv[i][5] == '/')
			o->node = argv[i] + 5;
		else if (strncmp(argv[i], "bin=", 4) == 0 && argv[i][4] == '/')
			o->bin = argv[i] + 4;
		else if (strncmp(argv[i], "timeout=", 8) == 0 && atoi(argv[i] + 8) > 0 && atoi(argv[i] + 8) <= 300)
			o->timeout = atoi(argv[i] + 8);
		else
			pam_syslog(pamh, LOG_ERR, "unknown or invalid option: %s", argv[i]);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line to the administrator: syslog and the log file (opened without following links). */
static void admin_log(pam_handle_t *pamh, const char *user, const char *type, const char *msg)
{
	char line[1200], stamp[64];
	time_t t = time(NULL);
	struct tm tm;
	struct stat st;
	int fd, n;

	pam_syslog(pamh, LOG_NOTICE, "%s: %s", user, msg);
	if (geteuid() != 0)
		return;
	fd = open(LOG_FILE, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		fd = open(LOG_FILE_RUN, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
		close(fd);
		return;
	}
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s pam_ecryptfs_ts[%d] %s %s: %s\n", stamp, (int)getpid(), user, type, msg);
	if (n > 0) {
		if ((size_t)n >= sizeof(line))
			n = sizeof(line) - 1;
		if (write(fd, line, (size_t)n) < 0) {
			/* nothing more to do: syslog has it */
		}
	}
	close(fd);
}

/* A message line from the hook: "info TEXT", "error TEXT" or "log TEXT". */
static void hook_line(pam_handle_t *pamh, const char *user, const char *type, char *line)
{
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	if (strncmp(line, "info ", 5) == 0)
		pam_info(pamh, "%s", line + 5);
	else if (strncmp(line, "error ", 6) == 0) {
		pam_error(pamh, "%s", line + 6);
		admin_log(pamh, user, type, line + 6);
	} else if (strncmp(line, "log ", 4) == 0)
		admin_log(pamh, user, type, line + 4);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void run_child(int in_fd, int out_fd, const struct opts *o, const char *type, const char *user, const char *service)
{
	char *args[4];
	char *env[6];
	char e_type[64], e_user[512], e_service[512];
	int null_fd;

	setsid(); /* its own process group: a time-out kills everything it started */
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0)
		_exit(127);
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0 || dup2(null_fd, 2) < 0)
		_exit(127);
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	/* passwd is setuid root (real uid the user's); sh would drop the effective uid to the real
	 * one, and the hook needs root to act as the user (setpriv). */
	if (setregid(getegid(), getegid()) < 0 || setreuid(geteuid(), geteuid()) < 0)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	snprintf(e_type, sizeof(e_type), "PAM_TYPE=%s", type);
	snprintf(e_user, sizeof(e_user), "PAM_USER=%s", user);
	snprintf(e_service, sizeof(e_service), "PAM_SERVICE=%s", service ? service : "");
	env[0] = e_type;
	env[1] = e_user;
	env[2] = e_service;
	env[3] = "PATH=" SAFE_PATH;
	env[4] = "LC_ALL=C";
	env[5] = NULL;
	args[0] = (char *)o->hook;
	args[1] = (char *)o->node;
	args[2] = (char *)o->bin;
	args[3] = NULL;
	execve(args[0], args, env);
	_exit(127);
}

/*
 * Run the hook for `type` with `secrets` (n NUL-terminated strings) on its stdin; relay its
 * messages; kill it after the time limit. Returns its exit status, or -1.
 */
static int run_hook(pam_handle_t *pamh, const struct opts *o, const char *type, const char *user, const char **secrets, int n)
{
	const char *service = NULL;
	struct sigaction ignore, saved;
	int in_pipe[2], out_pipe[2], status = 0, done = 0, timed_out = 0;
	char buf[4096];
	size_t used = 0;
	double deadline = now() + o->timeout;
	pid_t pid;

	pam_get_item(pamh, PAM_SERVICE, (const void **)&service);
	if (pipe2(in_pipe, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(out_pipe, O_CLOEXEC) < 0) {
		close(in_pipe[0]);
		close(in_pipe[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(in_pipe[0]);
		close(in_pipe[1]);
		close(out_pipe[0]);
		close(out_pipe[1]);
		return -1;
	}
	if (pid == 0)
		run_child(in_pipe[0], out_pipe[1], o, type, user, service);
	close(in_pipe[0]);
	close(out_pipe[1]);
	/* A hook that exits without reading must not kill the caller with SIGPIPE. */
	memset(&ignore, 0, sizeof(ignore));
	ignore.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ignore, &saved);
	fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < n; i++) {
		const char *s = secrets[i] ? secrets[i] : "";
		if (write_all(in_pipe[1], s, strlen(s) + 1) != 0)
			break;
	}
	close(in_pipe[1]);
	sigaction(SIGPIPE, &saved, NULL);

	/* Its messages until it closes stdout (the tools it runs write elsewhere), within the limit. */
	fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		double left = deadline - now();
		struct pollfd pfd = { .fd = out_pipe[0], .events = POLLIN };
		ssize_t r;
		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		r = read(out_pipe[0], buf + used, sizeof(buf) - 1 - used);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		used += (size_t)r;
		buf[used] = '\0';
		for (char *nl; (nl = memchr(buf, '\n', used)) != NULL;) {
			*nl = '\0';
			hook_line(pamh, user, type, buf);
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used);
		}
		if (used == sizeof(buf) - 1)
			used = 0; /* an over-long line: dropped */
	}
	close(out_pipe[0]);
	while (!timed_out) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			done = 1;
			break;
		}
		if (w < 0 && errno != EINTR)
			break;
		if (now() >= deadline) {
			timed_out = 1;
			break;
		}
		usleep(20000);
	}
	if (!done) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (timed_out) {
		char m[256];
		snprintf(m, sizeof(m), "%s step stopped after %d s (time limit); see ecryptfs-verify -u %s", type, o->timeout, user);
		admin_log(pamh, user, type, m);
		if (strcmp(type, "open_session") == 0)
			pam_error(pamh, "eCryptfs: your private directory was not mounted in time (see %s)", LOG_FILE);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * Does ~/.ecryptfs/NAME exist, seen as the user (an encrypted home mounted through FUSE hides it
 * from root)? Asked in a child that drops to the user, within 2 seconds.
 */
static int user_has(const char *user, const char *name)
{
	struct passwd *pw = getpwnam(user);
	char path[4096];
	int status = 0;
	double deadline = now() + 2;
	pid_t pid;

	if (pw == NULL || pw->pw_dir == NULL)
		return 0;
	if (snprintf(path, sizeof(path), "%s/.ecryptfs/%s", pw->pw_dir, name) >= (int)sizeof(path))
		return 0;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		struct stat st;
		if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
			_exit(2);
		_exit(stat(path, &st) == 0 && S_ISREG(st.st_mode) ? 0 : 1);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if ((w < 0 && errno != EINTR) || now() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return 0;
		}
		usleep(10000);
	}
}

static const char *get_user(pam_handle_t *pamh)
{
	const char *user = NULL;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL || user[0] == '\0' || strchr(user, '/') != NULL)
		return NULL;
	return user;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct opts o;
	const char *user = get_user(pamh);
	const void *tok = NULL;
	char *asked = NULL;
	const char *secret;
	int rc;

	(void)flags;
	if (user == NULL)
		return PAM_IGNORE;
	parse_opts(pamh, argc, argv, &o);
	/* As the hook: only users whose login mounts (~/.ecryptfs/auto-mount) are asked or unwrapped. */
	if (!user_has(user, "auto-mount"))
		return PAM_IGNORE;
	if (user_has(user, "wrapping-independent")) {
		/* The login password does not open it: ask, as pam_ecryptfs does. */
		if (pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &asked, "Encryption passphrase: ") != PAM_SUCCESS || asked == NULL)
			return PAM_IGNORE;
		secret = asked;
	} else {
		if (pam_get_item(pamh, PAM_AUTHTOK, &tok) != PAM_SUCCESS || tok == NULL)
			return PAM_IGNORE;
		secret = tok;
	}
	rc = run_hook(pamh, &o, "auth", user, &secret, 1);
	if (asked) {
		memset(asked, 0, strlen(asked));
		free(asked);
	}
	return rc == 0 ? PAM_SUCCESS : PAM_IGNORE;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS;
}

static int session(pam_handle_t *pamh, const char *type, int argc, const char **argv)
{
	struct opts o;
	const char *user = get_user(pamh);

	if (user == NULL)
		return PAM_IGNORE;
	parse_opts(pamh, argc, argv, &o);
	return run_hook(pamh, &o, type, user, NULL, 0) == 0 ? PAM_SUCCESS : PAM_IGNORE;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return session(pamh, "open_session", argc, argv);
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return session(pamh, "close_session", argc, argv);
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct opts o;
	const char *user;
	const void *old_tok = NULL, *new_tok = NULL;
	const char *secrets[2];

	if (flags & PAM_PRELIM_CHECK)
		return PAM_SUCCESS;
	user = get_user(pamh);
	if (user == NULL)
		return PAM_IGNORE;
	parse_opts(pamh, argc, argv, &o);
	pam_get_item(pamh, PAM_OLDAUTHTOK, &old_tok);
	pam_get_item(pamh, PAM_AUTHTOK, &new_tok);
	if (new_tok == NULL || ((const char *)new_tok)[0] == '\0')
		return PAM_IGNORE;
	secrets[0] = old_tok;
	secrets[1] = new_tok;
	return run_hook(pamh, &o, "password", user, secrets, 2) == 0 ? PAM_SUCCESS : PAM_IGNORE;
}
