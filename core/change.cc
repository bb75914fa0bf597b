#include "core/change.h"

#include "core/mapping.h"
#include "core/result.h"

namespace dirsync::core {

const char* to_string(Op op) {
  switch (op) {
    case Op::kCreate: return "create";
    case Op::kUpdate: return "update";
    case Op::kDetach: return "detach";
  }
  return "?";
}

const char* to_string(OutcomeKind kind) {
  switch (kind) {
    case OutcomeKind::kApplied: return "applied";
    case OutcomeKind::kRetry: return "retry";
    case OutcomeKind::kRejected: return "rejected";
    case OutcomeKind::kUnknown: return "unknown";
  }
  return "?";
}

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kSource: return "source error";
    case ErrorKind::kTarget: return "target error";
    case ErrorKind::kAuth: return "authentication error";
    case ErrorKind::kState: return "state error";
    case ErrorKind::kBusy: return "busy";
    case ErrorKind::kGuard: return "guard";
    case ErrorKind::kInvalid: return "invalid";
  }
  return "?";
}

const char* to_string(FieldType type) {
  switch (type) {
    case FieldType::kAny: return "any";
    case FieldType::kString: return "string";
    case FieldType::kInt: return "integer";
    case FieldType::kBool: return "boolean";
  }
  return "?";
}

}  // namespace dirsync::core
