// `runner --nproc N` (genfw/distributed.hpp): the launcher of local worker processes,
// and run_at_most, which runs commands a few at a time.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "genfw/distributed.hpp"
#include "genfw/error.hpp"

namespace genfw {

namespace {

// A port the kernel says is free now (a short race with other programs remains).
int free_local_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  GENFW_CHECK(fd >= 0, "--nproc: cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  GENFW_CHECK(ok, "--nproc: cannot find a free port on 127.0.0.1: ", std::strerror(errno));
  return ntohs(address.sin_port);
}

// Runs /proc/self/exe with `arguments` (argv[0] kept as given) and `environment` added.
// `own_group`: in a process group of its own, so that only the launcher hears the terminal's
// signals and hands each on once.
pid_t start_child(const std::vector<std::string>& arguments, const std::map<std::string, std::string>& environment,
                  const std::string& who, bool own_group = false) {
  pid_t pid = ::fork();
  GENFW_CHECK(pid >= 0, who, ": cannot start a process: ", std::strerror(errno));
  if (pid > 0) return pid;
  if (own_group) ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a child never outlives its launcher
  for (const auto& [name, value] : environment) ::setenv(name.c_str(), value.c_str(), 1);
  std::vector<char*> argv;
  for (const auto& argument : arguments) argv.push_back(const_cast<char*>(argument.c_str()));
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  std::fprintf(stderr, "%s: cannot run /proc/self/exe: %s\n", who.c_str(), std::strerror(errno));
  ::_exit(127);
}

pid_t start_worker(int rank, int nproc, int port, const std::vector<std::string>& arguments) {
  return start_child(arguments,
                     {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(nproc)},
                      {"LOCAL_RANK", std::to_string(rank)}, {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
                      {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
                      {"GENFW_NPROC", std::to_string(nproc)}},
                     "runner --nproc: rank " + std::to_string(rank), /*own_group=*/true);
}

// The workers, for the signal handlers: a slot is 0 once its worker is reaped (its pid may be reused).
std::vector<std::atomic<pid_t>>* g_workers = nullptr;
std::atomic<int> g_stop_signal{0};  // the first SIGINT/SIGTERM/SIGHUP the launcher handed on

void hand_on(int signal_number) {
  for (auto& pid : *g_workers) {
    const pid_t worker = pid.load();
    if (worker > 0) ::kill(worker, signal_number);
  }
}

// A stop request goes to every worker once, as if each had been signalled: rank 0 checkpoints and
// marks the run interrupted. A second request is handed on too (a second signal ends at once).
void on_stop_request(int signal_number) {
  int none = 0;
  g_stop_signal.compare_exchange_strong(none, signal_number);
  hand_on(signal_number);
}

// Job control: Ctrl-Z stops the workers with the launcher, `fg` or `bg` continues them.
void on_terminal_stop(int) {
  hand_on(SIGSTOP);
  ::kill(::getpid(), SIGSTOP);
}
void on_continue(int) { hand_on(SIGCONT); }

// Installs the handlers over `workers` for as long as it lives.
class HandedOnSignals {
 public:
  explicit HandedOnSignals(std::vector<std::atomic<pid_t>>& workers) {
    g_workers = &workers;
    install(SIGINT, on_stop_request);
    install(SIGTERM, on_stop_request);
    install(SIGHUP, on_stop_request);
    install(SIGTSTP, on_terminal_stop);
    install(SIGCONT, on_continue);
  }
  ~HandedOnSignals() {
    for (auto& [signal_number, action] : previous_) ::sigaction(signal_number, &action, nullptr);
    g_workers = nullptr;
  }
  HandedOnSignals(const HandedOnSignals&) = delete;
  HandedOnSignals& operator=(const HandedOnSignals&) = delete;

 private:
  void install(int signal_number, void (*handler)(int)) {
    struct sigaction action {};
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(signal_number, &action, &previous_[signal_number]);
  }
  std::map<int, struct sigaction> previous_;
};

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// Asks the remaining workers to stop, and kills those still running after a grace period.
// SIGCONT after SIGTERM: a stopped worker could not act on SIGTERM until continued.
void stop_workers(std::map<pid_t, int>& running) {
  for (const auto& [pid, _] : running) {
    ::kill(pid, SIGTERM);
    ::kill(pid, SIGCONT);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!running.empty() && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && (WIFEXITED(status) || WIFSIGNALED(status))) running.erase(pid);
    else if (pid <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const auto& [pid, _] : running) ::kill(pid, SIGKILL);
  for (const auto& [pid, _] : running) ::waitpid(pid, nullptr, 0);
  running.clear();
}

// ", and rank(s) 1 stopped by signal 19 (Stopped (signal)), never continued": the cause a
// failing rank's exit may only be the symptom of.
std::string stopped_ranks(const std::map<int, int>& stopped) {
  if (stopped.empty()) return "";
  std::string ranks, signals;
  for (const auto& [rank, signal_number] : stopped) {
    ranks += (ranks.empty() ? "" : ", ") + std::to_string(rank);
    const std::string name = std::to_string(signal_number) + " (" + strsignal(signal_number) + ")";
    if (signals.find(name) == std::string::npos) signals += (signals.empty() ? "" : ", ") + name;
  }
  return ", and rank(s) " + ranks + " stopped by signal " + signals + " and never continued (the others end when "
         "they stop answering, after --dist-timeout)";
}

}  // namespace

int run_local_workers(int nproc, const std::vector<std::string>& arguments) {
  GENFW_CHECK(nproc >= 1, "--nproc ", nproc, ": expected at least 1 process");
  const char* world_size = std::getenv("WORLD_SIZE");  // set and not empty: a torchrun-style job
  GENFW_CHECK(world_size == nullptr || *world_size == '\0', "--nproc starts its own workers; it cannot run inside a job that already "
              "set WORLD_SIZE (torchrun or SLURM start the workers themselves)");
  const int port = free_local_port();
  std::map<pid_t, int> running;
  std::map<int, int> stopped;  // rank → the signal that stopped it, until it is continued
  std::vector<std::atomic<pid_t>> workers(nproc);
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = start_worker(rank, nproc, port, arguments);
    running[pid] = rank;
    workers[rank] = pid;
  }
  g_stop_signal = 0;
  HandedOnSignals handed_on(workers);
  while (!running.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WUNTRACED | WCONTINUED);
    if (pid < 0 && errno == EINTR) continue;
    GENFW_CHECK(pid > 0, "--nproc: waiting for the workers failed: ", std::strerror(errno));
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const int rank = it->second;
    if (WIFSTOPPED(status)) {
      stopped[rank] = WSTOPSIG(status);
      continue;
    }
    if (WIFCONTINUED(status)) {
      stopped.erase(rank);
      continue;
    }
    running.erase(it);
    workers[rank] = 0;
    stopped.erase(rank);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    if (g_stop_signal) continue;  // each worker got the stop request: wait for all, they save their state
    std::cerr << "runner --nproc: rank " << rank << " " << describe_exit(status) << stopped_ranks(stopped)
              << "; stopping the other " << running.size() << " rank(s)\n";
    stop_workers(running);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return g_stop_signal ? 128 + g_stop_signal.load() : 0;
}

std::vector<int> run_at_most(int at_once, const std::vector<std::vector<std::string>>& commands,
                             const std::map<std::string, std::string>& environment, const std::string& who) {
  GENFW_CHECK(at_once >= 1, who, ": ", at_once, " processes at once; expected at least 1");
  std::vector<int> statuses(commands.size(), -1);
  std::map<pid_t, size_t> running;
  size_t next = 0;
  while (next < commands.size() || !running.empty()) {
    while (next < commands.size() && int(running.size()) < at_once) {
      running[start_child(commands[next], environment, who)] = next;
      ++next;
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    GENFW_CHECK(pid > 0, who, ": waiting for the processes failed: ", std::strerror(errno));
    auto it = running.find(pid);
    if (it == running.end()) continue;
    statuses[it->second] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (statuses[it->second] != 0) std::cerr << who << ": command " << it->second + 1 << " " << describe_exit(status) << "\n";
    running.erase(it);
  }
  return statuses;
}

}  // namespace genfw
