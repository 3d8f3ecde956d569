// Status and Result<T>: the error type at every lib/ and netnode/ boundary.
//
// OK costs nothing (no allocation). An error carries a code, the errno it came
// from when there was one (so fs/ can hand it back to the kernel unchanged),
// and a message with context (path, peer, shard id).
//
// Thread-safety: a Status is a value; distinct objects may be used from any
// thread, one object needs external synchronization like any value type.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shardfs {

enum class Code : uint8_t {
  kOk = 0,
  kNotFound,
  kCorruption,       // bytes from disk or the network failed a check
  kIOError,          // a syscall failed; errno() says which
  kInvalidArgument,  // the caller asked for something malformed
  kUnavailable,      // a peer is down or refused
  kTimedOut,
  kNoSpace,          // quota or disk full
  kExists,
  kPermissionDenied,
  kAuthFailed,       // wrong key, tampered ciphertext
  kBusy,             // try again later (locked, lease held)
  kAborted,          // shutting down
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg, int err = EIO) { return {Code::kIOError, std::move(msg), err}; }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status TimedOut(std::string msg) { return {Code::kTimedOut, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg), ENOSPC}; }
  static Status Exists(std::string msg) { return {Code::kExists, std::move(msg), EEXIST}; }
  static Status PermissionDenied(std::string msg) { return {Code::kPermissionDenied, std::move(msg), EACCES}; }
  static Status AuthFailed(std::string msg) { return {Code::kAuthFailed, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg), EBUSY}; }
  static Status Aborted(std::string msg) { return {Code::kAborted, std::move(msg)}; }
  // From a failed syscall: `context` names what was being done ("open /x").
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // The errno behind this error, or 0. Codes without one map to EIO in fs/.
  int err() const { return rep_ ? rep_->err : 0; }
  const std::string& message() const;
  // "NotFound: shard 3f2a...: no such shard" style, for logs and CLIs.
  std::string ToString() const;

  // Prepends context: Status::IOError("x").With("reading shard") ->
  // "reading shard: x". No-op on OK.
  Status With(std::string_view context) const;

  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsCorruption() const { return code() == Code::kCorruption; }
  bool IsTimedOut() const { return code() == Code::kTimedOut; }
  bool IsUnavailable() const { return code() == Code::kUnavailable; }
  bool IsNoSpace() const { return code() == Code::kNoSpace; }

  Status(Code code, std::string msg, int err = 0)
      : rep_(std::make_shared<Rep>(Rep{code, err, std::move(msg)})) {}

 private:
  struct Rep {
    Code code;
    int err;
    std::string msg;
  };
  // shared_ptr keeps Status cheap to copy; errors are immutable once built.
  std::shared_ptr<const Rep> rep_;
};

// A value or an error. REQUIRES: ok() before value().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace shardfs

// Early return on error. Usage: RETURN_IF_ERROR(store.Put(x));
#define SHARDFS_CONCAT_INNER(a, b) a##b
#define SHARDFS_CONCAT(a, b) SHARDFS_CONCAT_INNER(a, b)
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::shardfs::Status _st = (expr);                  \
    if (!_st.ok()) return _st;                       \
  } while (0)
// ASSIGN_OR_RETURN(auto x, Foo()); declares x from a Result or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SHARDFS_CONCAT(_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
