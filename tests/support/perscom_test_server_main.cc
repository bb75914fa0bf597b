// perscom_test_server: the loopback PERSCOM as a process, for end-to-end tests
// of the real `dirsync` binary.
//
//   perscom_test_server [--port N] [--token T] [--error-style perscom|laravel] [--perscom-id ID]
//
// Prints the bound port on stdout (one line, flushed), then serves until
// SIGINT or SIGTERM. On exit it prints the stored users as one JSON line, so a
// test can assert the server's final state.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "tests/support/perscom_test_server.h"

int main(int argc, char** argv) {
  using dirsync::testing::ErrorStyle;
  dirsync::testing::PerscomServerOptions options;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "perscom_test_server: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--port") {
      port = std::stoi(next());
    } else if (arg == "--token") {
      options.token = next();
    } else if (arg == "--error-style") {
      const std::string style = next();
      options.error_style = style == "laravel" ? ErrorStyle::kLaravel : ErrorStyle::kPerscom;
    } else if (arg == "--perscom-id") {
      options.required_perscom_id = next();
    } else {
      std::cerr << "usage: perscom_test_server [--port N] [--token T] [--error-style perscom|laravel] "
                   "[--perscom-id ID]\n";
      return 2;
    }
  }

  // Block the signals before any thread starts, so that only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  dirsync::testing::PerscomTestServer server(options);
  server.set_request_log(false);  // nothing here reads it, and a long run would keep every body
  try {
    server.start(static_cast<std::uint16_t>(port));
  } catch (const std::exception& e) {
    std::cerr << "perscom_test_server: " << e.what() << "\n";
    return 1;
  }
  std::cout << server.port() << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  server.stop();
  std::cout << server.users().dump() << std::endl;
  return 0;
}
