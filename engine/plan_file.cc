#include "engine/plan_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace dirsync::engine {
namespace {

using nlohmann::json;

std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

bool parse_hex(const json& v, std::uint64_t& out) {
  if (!v.is_string()) return false;
  const auto& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 16) return false;
  out = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    out = out << 4 | static_cast<std::uint64_t>(d);
  }
  return true;
}

core::Error invalid(std::string what) { return core::Error{core::ErrorKind::kInvalid, std::move(what)}; }

}  // namespace

json plan_to_json(const RunReport& report, const std::string& target, const std::string& created_at) {
  json changes = json::array();
  for (const auto& c : report.plan) {
    json j = {{"op", core::to_string(c.op)}, {"key", c.key}, {"hash", hex(c.hash)}};
    if (!c.target_id.empty()) j["target_id"] = c.target_id;
    if (c.op != core::Op::kDetach) j["payload"] = c.payload;
    if (c.op != core::Op::kCreate) {
      j["base"] = hex(c.base_hash);
      j["previous"] = c.previous;
    }
    if (!c.changed_fields.empty()) j["changed_fields"] = c.changed_fields;
    if (c.resync) j["resync"] = true;
    if (c.missing) j["missing"] = true;
    if (c.filtered) j["filtered"] = true;
    changes.push_back(std::move(j));
  }
  json doc = {{"dirsync_plan", kPlanFormat},
              {"job", report.job},
              {"target", target},
              {"created_at", created_at},
              {"changes", std::move(changes)}};
  if (!report.blocked_note.empty()) doc["blocked"] = report.blocked_note;
  return doc;
}

core::Result<SavedPlan> plan_from_json(const json& doc) {
  if (!doc.is_object()) return invalid("a plan is a JSON object");
  if (doc.value("dirsync_plan", 0) != kPlanFormat) {
    return invalid("not a dirsync plan of format " + std::to_string(kPlanFormat) + " (\"dirsync_plan\" is missing "
                   "or has another version)");
  }
  SavedPlan plan;
  for (const char* field : {"job", "target"}) {
    if (!doc.contains(field) || !doc[field].is_string() || doc[field].get<std::string>().empty()) {
      return invalid(std::string("\"") + field + "\" must be a non-empty string");
    }
  }
  plan.job = doc["job"];
  plan.target = doc["target"];
  plan.created_at = doc.value("created_at", "");
  plan.blocked = doc.value("blocked", "");
  if (!doc.contains("changes") || !doc["changes"].is_array()) return invalid("\"changes\" must be an array");
  std::size_t i = 0;
  for (const auto& j : doc["changes"]) {
    const std::string where = "changes[" + std::to_string(i++) + "]: ";
    if (!j.is_object()) return invalid(where + "must be an object");
    core::Change c;
    const std::string op = j.value("op", "");
    if (op == "create") c.op = core::Op::kCreate;
    else if (op == "update") c.op = core::Op::kUpdate;
    else if (op == "detach") c.op = core::Op::kDetach;
    else return invalid(where + "op must be create, update or detach");
    if (!j.contains("key") || !j["key"].is_string() || j["key"].get<std::string>().empty()) {
      return invalid(where + "key must be a non-empty string");
    }
    c.key = j["key"];
    if (j.contains("target_id")) {
      if (!j["target_id"].is_string()) return invalid(where + "target_id must be a string");
      c.target_id = j["target_id"];
    }
    if (!parse_hex(j.value("hash", json()), c.hash)) return invalid(where + "hash must be 1-16 lowercase hex digits");
    if (c.op != core::Op::kCreate && !parse_hex(j.value("base", json()), c.base_hash)) {
      return invalid(where + "base (the snapshot entry's hash) must be 1-16 lowercase hex digits");
    }
    if (c.op != core::Op::kDetach) {
      if (!j.contains("payload") || !j["payload"].is_object()) return invalid(where + "payload must be an object");
      c.payload = j["payload"];
      if (core::canonical_hash(c.payload) != c.hash) {
        return invalid(where + "payload does not match its hash (the file was edited?)");
      }
    }
    c.previous = j.value("previous", json());
    if (j.contains("changed_fields")) {
      if (!j["changed_fields"].is_array()) return invalid(where + "changed_fields must be an array of strings");
      for (const auto& f : j["changed_fields"]) {
        if (!f.is_string()) return invalid(where + "changed_fields must be an array of strings");
        c.changed_fields.push_back(f);
      }
    }
    c.resync = j.value("resync", false);
    c.missing = j.value("missing", false);
    c.filtered = j.value("filtered", false);
    plan.changes.push_back(std::move(c));
  }
  return plan;
}

core::Status write_plan_file(const std::string& path, const json& doc) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return core::Error{core::ErrorKind::kInvalid, "cannot write " + tmp + ": " + std::strerror(errno)};
  const std::string text = doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return core::Error{core::ErrorKind::kInvalid, "cannot write " + tmp + ": " + std::strerror(err)};
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return core::Error{core::ErrorKind::kInvalid, "cannot write " + path + ": " + std::strerror(err)};
  }
  return core::Ok{};
}

core::Result<SavedPlan> read_plan_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalid("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  const json doc = json::parse(buf.str(), nullptr, false);
  if (doc.is_discarded()) return invalid(path + ": not valid JSON");
  auto plan = plan_from_json(doc);
  if (!plan) return invalid(path + ": " + plan.error().message);
  return plan;
}

}  // namespace dirsync::engine
