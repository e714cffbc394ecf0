/*
 * pam_ecryptfs_ts_passwd.so: the password-change half of ecryptfs-ts's PAM integration.
 *
 * Why C: re-wrapping ~/.ecryptfs/wrapped-passphrase needs the old and the new password, and
 * pam_exec hands a script at most PAM_AUTHTOK (never PAM_OLDAUTHTOK). This module does only
 * what pam_exec cannot: in the UPDATE phase of pam_chauthtok it runs the program named by its
 * arguments (as root, with PAM_TYPE=password and PAM_USER in a clean environment) and writes
 * "OLD\0NEW\0" to the program's stdin. Nothing reaches argv, the environment or a file.
 *
 *   password optional pam_ecryptfs_ts_passwd.so /usr/lib/ecryptfs-ts/pam-ecryptfs-ts
 *
 * It never fails a password change (as pam_ecryptfs): problems are logged.
 */
#define PAM_SM_PASSWORD
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

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

static void run_child(int in_fd, const char *user, const char *service, int argc, const char **argv)
{
	char **args = calloc((size_t)argc + 1, sizeof(char *));
	char *env[5];
	char e_user[512], e_service[512];
	int null_fd, fd;

	if (args == NULL)
		_exit(127);
	for (int i = 0; i < argc; i++)
		args[i] = (char *)argv[i];
	if (dup2(in_fd, 0) < 0)
		_exit(127);
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
		_exit(127);
	for (fd = 3; fd < 1024; fd++)
		close(fd);
	/* passwd is setuid root (real uid the user's); sh would drop the effective uid to the real
	 * one, and the program needs root to act as the user (setpriv). */
	if (setregid(getegid(), getegid()) < 0 || setreuid(geteuid(), geteuid()) < 0)
		_exit(127);
	snprintf(e_user, sizeof(e_user), "PAM_USER=%s", user);
	snprintf(e_service, sizeof(e_service), "PAM_SERVICE=%s", service ? service : "");
	env[0] = "PAM_TYPE=password";
	env[1] = e_user;
	env[2] = e_service;
	env[3] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	env[4] = NULL;
	execve(args[0], args, env);
	_exit(127);
}

PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *user = NULL, *service = NULL;
	const void *old_tok = NULL, *new_tok = NULL;
	struct sigaction ignore, saved;
	int pipe_fd[2], status = 0, rc;
	pid_t pid;

	if (flags & PAM_PRELIM_CHECK)
		return PAM_SUCCESS;
	if (argc < 1 || argv[0][0] != '/') {
		pam_syslog(pamh, LOG_ERR, "usage: pam_ecryptfs_ts_passwd.so /absolute/program [args]");
		return PAM_SUCCESS;
	}
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL)
		return PAM_SUCCESS;
	pam_get_item(pamh, PAM_SERVICE, (const void **)&service);
	pam_get_item(pamh, PAM_OLDAUTHTOK, &old_tok);
	pam_get_item(pamh, PAM_AUTHTOK, &new_tok);
	if (new_tok == NULL || ((const char *)new_tok)[0] == '\0')
		return PAM_SUCCESS;
	if (pipe(pipe_fd) < 0)
		return PAM_SUCCESS;
	pid = fork();
	if (pid < 0) {
		close(pipe_fd[0]);
		close(pipe_fd[1]);
		return PAM_SUCCESS;
	}
	if (pid == 0) {
		close(pipe_fd[1]);
		run_child(pipe_fd[0], user, service, argc, argv);
	}
	close(pipe_fd[0]);
	/* A program that exits without reading must not kill passwd with SIGPIPE. */
	memset(&ignore, 0, sizeof(ignore));
	ignore.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ignore, &saved);
	rc = write_all(pipe_fd[1], old_tok ? old_tok : "", strlen(old_tok ? old_tok : "") + 1);
	if (rc == 0)
		rc = write_all(pipe_fd[1], new_tok, strlen(new_tok) + 1);
	close(pipe_fd[1]);
	sigaction(SIGPIPE, &saved, NULL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		pam_syslog(pamh, LOG_WARNING, "%s did not re-wrap the eCryptfs passphrase of %s", argv[0], user);
	return PAM_SUCCESS;
}
