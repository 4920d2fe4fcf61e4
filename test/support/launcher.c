/* The stand-in for hab-launch, a container's PID 1: starts the Supervisor, reaps every process reparented to it, passes the shutdown on. */
/*
 * What it does as habitat-sh/habitat's components/launcher does (src/server.rs):
 * - Starts the Supervisor (here: the command line it is given) as its child, sharing its stdout and stderr
 *   (spawn_supervisor).
 * - On SIGCHLD it calls waitpid(-1, WNOHANG) until nothing is left to reap (reap_zombie_orphans): as PID 1 it
 *   inherits every orphan in the container, and a zombie left unreaped would stay in its process group, where
 *   the Supervisor's stop waits for the group to empty (components/sup/src/sys/unix/service.rs, kill()).
 * - SIGTERM or SIGINT asks the Supervisor to shut down (the real one sends a Shutdown message over its IPC
 *   channel; the stand-in Supervisor takes SIGTERM for it), reaps while the Supervisor stops its services, and
 *   exits 0 once the Supervisor is gone (shutdown(), tick()).
 * - The Supervisor exiting by itself: 84 means exit 0, 86 means exit 86, killed by a signal means exit 0
 *   (handle_supervisor_exit). Any other code makes the real launcher start a new Supervisor; the stand-in
 *   exits with that code instead, so that a broken stand-in fails the pod rather than looping.
 * - SIGHUP, SIGQUIT, SIGALRM, SIGUSR1 and SIGUSR2 are caught and ignored (core/src/os/signals/unix.rs). The real
 *   launcher passes SIGHUP on and hab-sup restarts itself; the stand-in Supervisor has no such restart.
 * Children start with the default signal dispositions and an empty mask, as hook_command's pre_exec unblocks
 * every signal (core/src/os/process/exec/unix.rs).
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t shutdown_asked;

static void on_shutdown(int sig) { (void)sig; shutdown_asked = 1; }
/* Empty on purpose: a caught signal is reset to its default in the child at exec, an ignored one would stay ignored. */
static void on_other(int sig) { (void)sig; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "hab-launch stand-in: give the Supervisor's command line, as in: hab-launch /path/to/node supervisor.cjs run ORIGIN/NAME\n");
    return 64;
  }
  sigset_t handled, original, waiting;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  /* Blocked outside sigsuspend, so a signal between the check and the wait is not lost. */
  sigprocmask(SIG_BLOCK, &handled, &original);
  waiting = original;
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGCHLD);

  struct sigaction act = {0};
  act.sa_handler = on_shutdown;
  sigaction(SIGTERM, &act, 0);
  sigaction(SIGINT, &act, 0);
  act.sa_handler = on_other;
  int ignored[] = {SIGHUP, SIGQUIT, SIGALRM, SIGUSR1, SIGUSR2};
  for (unsigned i = 0; i < sizeof ignored / sizeof ignored[0]; i++) sigaction(ignored[i], &act, 0);
  act.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &act, 0);

  pid_t supervisor = fork();
  if (supervisor < 0) {
    perror("hab-launch stand-in: fork");
    return 70;
  }
  if (supervisor == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, 0);
    execv(argv[1], argv + 1);
    perror("hab-launch stand-in: cannot start the Supervisor");
    _exit(127);
  }

  int status = 0;
  int forwarded = 0;
  for (;;) {
    int supervisor_gone = 0;
    pid_t pid;
    int reaped;
    while ((pid = waitpid(-1, &reaped, WNOHANG)) > 0) {
      if (pid == supervisor) {
        supervisor_gone = 1;
        status = reaped;
      }
    }
    if (supervisor_gone) break;
    if (shutdown_asked && !forwarded) {
      kill(supervisor, SIGTERM);
      forwarded = 1;
    }
    sigsuspend(&waiting);
  }

  if (forwarded) return 0;
  if (WIFSIGNALED(status)) {
    printf("hab-launch stand-in: Supervisor process killed by signal %d; shutting everything down now\n", WTERMSIG(status));
    return 0;
  }
  int code = WEXITSTATUS(status);
  if (code == 84) return 0;
  if (code != 86) fprintf(stderr, "hab-launch stand-in: the Supervisor exited with code %d; hab-launch would start a new one, the stand-in stops here\n", code);
  return code;
}
