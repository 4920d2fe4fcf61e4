/* The pod sandbox's process: holds the pod's namespaces, reaps what is reparented to it, exits on TERM or INT. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) { (void)sig; stop = 1; }
/* Empty on purpose: SIGCHLD only has to wake the loop so it reaps. */
static void on_child(int sig) { (void)sig; }

int main(void) {
  sigset_t handled, waiting;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGCHLD);
  /* Blocked outside sigsuspend, so a signal between the check and the wait is not lost. */
  sigprocmask(SIG_BLOCK, &handled, &waiting);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGCHLD);

  struct sigaction act = {0};
  act.sa_handler = on_stop;
  sigaction(SIGTERM, &act, 0);
  sigaction(SIGINT, &act, 0);
  act.sa_handler = on_child;
  act.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &act, 0);

  while (!stop) {
    /* As PID 1 of the pod it inherits orphans; a zombie left unreaped would hold its PID forever. */
    while (waitpid(-1, 0, WNOHANG) > 0) {}
    if (!stop) sigsuspend(&waiting);
  }
  return 0;
}
