// A process that dies while it reads the state: opens it as dirsync does
// (state::StateStore), starts a snapshot reader (a read transaction holding an
// LMDB reader slot), says so on stdout, and is killed with SIGKILL, so nothing
// releases the slot. Usage: stale_reader_helper STATE_DIR JOB
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "state/state_store.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s STATE_DIR JOB\n", argv[0]);
    return 2;
  }
  auto store = dirsync::state::StateStore::open(argv[1]);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().message.c_str());
    return 1;
  }
  auto reader = store.value()->reader(argv[2]);
  (void)reader->find("E1");
  std::printf("reading as pid %ld\n", static_cast<long>(::getpid()));
  std::fflush(stdout);
  ::raise(SIGKILL);
  return 1;  // not reached
}
