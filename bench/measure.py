#!/usr/bin/python3
"""measure.py -- run one command and report its cost (used by bench/sync-vs-mbsync).

usage: measure.py RESULT_FILE LOG_FILE CMD [ARGS...]

Runs CMD with stdin from /dev/null, stdout+stderr appended to LOG_FILE,
and appends one line to RESULT_FILE:

    rc wall_s user_s sys_s maxrss_kb server_cpu_s anon_kb file_kb bg_cpu_s

wall_s      monotonic wall-clock time from fork to reap (perf_counter)
user_s/sys_s/maxrss_kb
            the child's own rusage from wait4() (user CPU, system CPU,
            peak resident set size in KiB; includes any grandchildren the
            child waited for)
server_cpu_s
            CPU time (user+sys) used meanwhile by the process tree rooted at
            $MX_BENCH_SERVER_PID (the Dovecot master: its live children plus
            the children it reaped, via cutime/cstime); 0 if unset
bg_cpu_s    CPU time used by everything else on the machine meanwhile (busy
            time from /proc/stat, steal excluded, minus the child and the
            server): kernel writeback threads and unrelated processes; a
            large value means the machine was not quiet
anon_kb/file_kb
            the largest RssAnon (heap, stacks: memory the process owns) and
            RssFile (file pages it has mapped, e.g. an LMDB map, shared
            with the page cache) seen in /proc/PID/status, sampled every
            5 ms; maxrss_kb is their peak sum as the kernel counts it.

Exit status: that of CMD (128+signal if it was killed).
"""
import os
import sys
import threading
import time


HZ = os.sysconf('SC_CLK_TCK')


def busy_s():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice]
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    return busy / HZ


def tree_cpu_s(root):
    """utime+stime+cutime+cstime summed over ROOT and its descendants."""
    if not root:
        return 0.0
    kids, cpu = {}, {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                st = f.read()
        except OSError:
            continue
        f = st[st.rindex(')') + 2:].split()
        # f[0] = state (field 3); ppid field 4; utime..cstime fields 14..17
        pid, ppid = int(d), int(f[1])
        kids.setdefault(ppid, []).append(pid)
        cpu[pid] = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0)
        todo.extend(kids.get(p, []))
    return total / HZ


def sample(pid, peak, done):
    path = '/proc/%d/status' % pid
    while not done.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith('RssAnon:'):
                        peak[0] = max(peak[0], int(line.split()[1]))
                    elif line.startswith('RssFile:'):
                        peak[1] = max(peak[1], int(line.split()[1]))
        except (OSError, ValueError, IndexError):
            pass
        done.wait(0.005)


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    result, log, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    logfd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    nullfd = os.open('/dev/null', os.O_RDONLY)
    server = int(os.environ.get('MX_BENCH_SERVER_PID') or 0)
    s0 = tree_cpu_s(server)
    b0 = busy_s()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(nullfd, 0)
            os.dup2(logfd, 1)
            os.dup2(logfd, 2)
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    peak = [0, 0]
    done = threading.Event()
    th = threading.Thread(target=sample, args=(pid, peak, done), daemon=True)
    th.start()
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter()
    done.set()
    th.join()
    b1 = busy_s()
    time.sleep(0.02)  # let the master reap the connection's processes
    s1 = tree_cpu_s(server)
    if os.WIFEXITED(status):
        rc = os.WEXITSTATUS(status)
    else:
        rc = 128 + os.WTERMSIG(status)
    own = ru.ru_utime + ru.ru_stime
    srv = max(0.0, s1 - s0)
    bg = max(0.0, (b1 - b0) - own - srv)
    with open(result, 'a') as f:
        f.write('%d %.4f %.3f %.3f %d %.2f %d %d %.2f\n' % (
            rc, t1 - t0, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, srv,
            peak[0], peak[1], bg))
    return rc


if __name__ == '__main__':
    sys.exit(main())
