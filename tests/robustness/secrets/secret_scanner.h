#pragma once
// Finds secret values in bytes a test collected (command output, files, log
// datagrams), in every form an encoder on the way could have given them.
//
// A finding names the artifact, the secret and the form ("perscom token
// (base64 form)"), never the value: a test's report of a leak must not be a
// leak itself (CI keeps test logs). For the same reason tests print collected
// output only through redact().
//
// Forms of a value registered with add() (each only when it differs from the
// ones before it):
//   as is; percent-encoded (RFC 3986 unreserved kept; upper- and lower-case
//   hex; space as %20 and as '+'); JSON-escaped (nlohmann's dump, with and
//   without \uXXXX for non-ASCII, and with "\/"); base64 and base64url of the
//   value, with and without padding, and the middle of the base64 of the value
//   at any byte alignment (what survives when it is encoded as part of a larger
//   string, e.g. "user:password" in a Basic header) — that middle is only
//   registered when it is at least 8 characters long, to keep false positives out.
// add_form() registers one more form of its own (a Basic header, a derived password).
//
// Not thread safe while being filled; scan() and redact() are const.
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dirsync::testing {

class SecretScanner {
 public:
  // `name` says what the secret is ("perscom token"); `value` must not be empty.
  void add(const std::string& name, const std::string& value);
  // One form of its own: `bytes` is searched for as given; the finding reads "<name> (<form>)".
  void add_form(const std::string& name, const std::string& form, const std::string& bytes);

  // One line per form found in `bytes`: "<artifact>: <name> (<form>) at byte N" (first occurrence).
  // Empty: nothing found.
  std::vector<std::string> scan(const std::string& artifact, std::string_view bytes) const;
  // `text` with every form replaced by "[<name> (<form>)]", safe to print.
  std::string redact(std::string text) const;

  struct Form {
    std::string label;  // "<name> (<form>)"
    std::string bytes;
  };
  const std::vector<Form>& forms() const { return forms_; }

 private:
  std::vector<Form> forms_;
};

// Standard base64 (RFC 4648 §4) with padding.
std::string base64(std::string_view bytes);

// Every regular file under `dir` (recursively), read whole, as (path, bytes).
// Sockets, FIFOs and the like are skipped; a missing `dir` yields nothing.
std::vector<std::pair<std::string, std::string>> read_tree(const std::filesystem::path& dir);

}  // namespace dirsync::testing
