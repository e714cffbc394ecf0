#!/usr/bin/env python3
# Drive a command on a pseudo-terminal like a person would: wait for each prompt, type the answer.
# usage: pty-driver.py SCRIPT_JSON -- CMD ARGS...
# SCRIPT_JSON: [[prompt_substring, answer], ...]; prints the whole transcript; exits with CMD's status.
import json, os, pty, select, sys, time

def main():
    steps = json.loads(sys.argv[1])
    cmd = sys.argv[sys.argv.index('--') + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out = b''
    seen = 0
    deadline = time.time() + 60
    while True:
        if steps and steps[0][0].encode() in out[seen:]:
            seen = out.index(steps[0][0].encode(), seen) + len(steps[0][0])
            os.write(fd, (steps[0][1] + '\n').encode())
            steps.pop(0)
            continue
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        if time.time() > deadline:
            os.kill(pid, 9)
            break
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode('utf-8', 'replace'))
    sys.exit(os.waitstatus_to_exitcode(status))

main()
