// The LDAP source's value conversion (ldap_source.h, detail::): any bytes
// become text a record can carry — unchanged when they are strict UTF-8 and
// the attribute is not binary, else lowercase hex of every byte. Strict UTF-8
// is checked against the CSV reader's independent validator; userAccountControl
// parsing never crashes and agrees with std::stoll on plain decimals.
#include <string>
#include <string_view>

#include "connectors/sources/csv/csv_reader.h"
#include "connectors/sources/ldap/ldap_source.h"
#include "fuzz/fuzz_input.h"

using namespace dirsync;

namespace {

bool is_hex_of(const std::string& hex, std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  if (hex.size() != 2 * bytes.size()) return false;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (hex[2 * i] != kDigits[c >> 4] || hex[2 * i + 1] != kDigits[c & 0xf]) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string text = sources::detail::ldap_value_text(bytes, false);
  if (sources::is_valid_utf8(bytes)) {
    fuzz::require(text == bytes);
  } else {
    fuzz::require(is_hex_of(text, bytes));
  }
  fuzz::require(is_hex_of(sources::detail::ldap_value_text(bytes, true), bytes));

  const auto disabled = sources::detail::account_disabled(bytes);
  if (disabled) fuzz::require(*disabled == "true" || *disabled == "false");
  const bool plain = !bytes.empty() && bytes.size() <= 18 &&
                     bytes.find_first_not_of("0123456789") == std::string_view::npos;
  if (plain) {
    fuzz::require(disabled && *disabled == ((std::stoll(std::string(bytes)) & 2) != 0 ? "true" : "false"));
  }
  return 0;
}
