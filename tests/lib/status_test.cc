// Tests for lib/status.h: factories, context, errno mapping, Result and the
// early-return macros.
#include "lib/status.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace shardfs {
namespace {

Status FailIf(bool fail) {
  if (fail) return Status::NotFound("missing");
  return Status::OK();
}

Status Chain(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  *reached = 1;
  return Status::OK();
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

}  // namespace

TEST_SUITE("status") {

TEST_CASE("OK is the default and costs nothing") {
  Status s;
  CHECK(s.ok());
  CHECK(s.code() == Code::kOk);
  CHECK(s.err() == 0);
  CHECK(s.message().empty());
  CHECK(s.ToString() == "OK");
  CHECK(Status::OK().ok());
}

TEST_CASE("factories set code, errno and message") {
  struct Case {
    Status s;
    Code code;
    int err;
  };
  const Case cases[] = {
      {Status::NotFound("m"), Code::kNotFound, 0},
      {Status::Corruption("m"), Code::kCorruption, 0},
      {Status::IOError("m"), Code::kIOError, EIO},
      {Status::IOError("m", EROFS), Code::kIOError, EROFS},
      {Status::InvalidArgument("m"), Code::kInvalidArgument, 0},
      {Status::Unavailable("m"), Code::kUnavailable, 0},
      {Status::TimedOut("m"), Code::kTimedOut, 0},
      {Status::NoSpace("m"), Code::kNoSpace, ENOSPC},
      {Status::Exists("m"), Code::kExists, EEXIST},
      {Status::PermissionDenied("m"), Code::kPermissionDenied, EACCES},
      {Status::AuthFailed("m"), Code::kAuthFailed, 0},
      {Status::Busy("m"), Code::kBusy, EBUSY},
      {Status::Aborted("m"), Code::kAborted, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(CodeName(c.code));
    CHECK_FALSE(c.s.ok());
    CHECK(c.s.code() == c.code);
    CHECK(c.s.err() == c.err);
    CHECK(c.s.message() == "m");
    CHECK(c.s.ToString() == std::string(CodeName(c.code)) + ": m");
  }
  CHECK(Status::NotFound("x").IsNotFound());
  CHECK(Status::Corruption("x").IsCorruption());
  CHECK(Status::TimedOut("x").IsTimedOut());
  CHECK(Status::Unavailable("x").IsUnavailable());
  CHECK(Status::NoSpace("x").IsNoSpace());
  CHECK_FALSE(Status::NoSpace("x").IsNotFound());
}

TEST_CASE("every code has a name") {
  for (int c = 0; c <= static_cast<int>(Code::kAborted); ++c) {
    CAPTURE(c);
    CHECK(CodeName(static_cast<Code>(c)) != "Unknown");
  }
}

TEST_CASE("With prepends context and keeps code and errno") {
  Status s = Status::IOError("disk on fire", EROFS).With("writing shard 3");
  CHECK(s.code() == Code::kIOError);
  CHECK(s.err() == EROFS);
  CHECK(s.message() == "writing shard 3: disk on fire");
  CHECK(s.With("put").message() == "put: writing shard 3: disk on fire");
  CHECK(Status::OK().With("anything").ok());
}

TEST_CASE("copies share the immutable error") {
  Status a = Status::Busy("lease held");
  Status b = a;
  Status c = b.With("mount");
  CHECK(b.message() == "lease held");
  CHECK(a.message() == "lease held");
  CHECK(c.message() == "mount: lease held");
}

TEST_CASE("FromErrno maps errno to a code and keeps it") {
  struct Case {
    int err;
    Code code;
  };
  const Case cases[] = {
      {ENOENT, Code::kNotFound},        {ENOSPC, Code::kNoSpace},
      {EDQUOT, Code::kNoSpace},         {EEXIST, Code::kExists},
      {EACCES, Code::kPermissionDenied}, {EPERM, Code::kPermissionDenied},
      {EIO, Code::kIOError},            {EROFS, Code::kIOError},
  };
  for (const Case& c : cases) {
    CAPTURE(c.err);
    Status s = Status::FromErrno(c.err, "open /x");
    CHECK(s.code() == c.code);
    CHECK(s.err() == c.err);
    CHECK(s.message() == std::string("open /x: ") + std::strerror(c.err));
  }
}

TEST_CASE("Result holds a value or an error") {
  Result<std::string> ok = std::string("shard");
  REQUIRE(ok.ok());
  CHECK(ok.status().ok());
  CHECK(*ok == "shard");
  CHECK(ok->size() == 5);
  CHECK(ok.value() == "shard");

  Result<std::string> bad = Status::NotFound("gone");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().IsNotFound());
  CHECK(bad.status().message() == "gone");

  // Move-only values move out.
  Result<std::unique_ptr<int>> p = std::make_unique<int>(7);
  REQUIRE(p.ok());
  std::unique_ptr<int> owned = std::move(p).value();
  REQUIRE(owned != nullptr);
  CHECK(*owned == 7);
}

TEST_CASE("RETURN_IF_ERROR and ASSIGN_OR_RETURN return early") {
  int reached = 0;
  CHECK(Chain(true, &reached).IsNotFound());
  CHECK(reached == 0);
  CHECK(Chain(false, &reached).ok());
  CHECK(reached == 1);

  Result<int> q = Quarter(12);
  REQUIRE(q.ok());
  CHECK(*q == 3);
  CHECK(Quarter(6).status().code() == Code::kInvalidArgument);  // 6 -> 3 is odd
  CHECK(Quarter(5).status().message() == "odd");
}

}  // TEST_SUITE

}  // namespace shardfs
