// Status formatting. See status.h.
#include "lib/status.h"

#include <cstring>

namespace shardfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kCorruption: return "Corruption";
    case Code::kIOError: return "IOError";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kUnavailable: return "Unavailable";
    case Code::kTimedOut: return "TimedOut";
    case Code::kNoSpace: return "NoSpace";
    case Code::kExists: return "Exists";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kAuthFailed: return "AuthFailed";
    case Code::kBusy: return "Busy";
    case Code::kAborted: return "Aborted";
  }
  return "Unknown";
}

Status Status::FromErrno(int err, std::string_view context) {
  Code code = Code::kIOError;
  if (err == ENOENT) code = Code::kNotFound;
  if (err == ENOSPC || err == EDQUOT) code = Code::kNoSpace;
  if (err == EEXIST) code = Code::kExists;
  if (err == EACCES || err == EPERM) code = Code::kPermissionDenied;
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  return Status(code, std::move(msg), err);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->msg : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(CodeName(rep_->code));
  s += ": ";
  s += rep_->msg;
  return s;
}

Status Status::With(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += rep_->msg;
  return Status(rep_->code, std::move(msg), rep_->err);
}

}  // namespace shardfs
