// Status / StatusOr: how ampc reports errors caused by user input.
// Bad input never asserts; it returns a Status naming the file, node, op and problem.
// Broken internal invariants use AMPC_CHECK, which aborts with a message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace ampc {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the user's input is wrong (model, flags, data): exit code 2
  kNotFound,         // a file or name the user gave does not exist: exit code 2
  kUnimplemented,    // valid input that ampc does not support yet: exit code 2
  kInternal,         // failure while running: exit code 1
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "prefix: message" (used to add file / node context).
  Status WithContext(const std::string& prefix) const {
    if (ok()) return *this;
    return Status(code_, prefix + ": " + message_);
  }
  // Exit code the CLI uses for this status: 0 ok, 2 bad input or usage, 1 failure while running.
  int ExitCode() const {
    switch (code_) {
      case StatusCode::kOk:
        return 0;
      case StatusCode::kInternal:
        return 1;
      default:
        return 2;
    }
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) {
      std::fprintf(stderr, "internal error: StatusOr built from an OK status\n");
      std::abort();
    }
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] inline void CheckFailed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "ampc internal error: %s:%d: check failed: %s\n", file, line, cond);
  std::abort();
}

}  // namespace ampc

#define AMPC_CHECK(cond)                                         \
  do {                                                           \
    if (!(cond)) ::ampc::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

#define AMPC_CONCAT_INNER(a, b) a##b
#define AMPC_CONCAT(a, b) AMPC_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)    \
  do {                           \
    ::ampc::Status _st = (expr); \
    if (!_st.ok()) return _st;   \
  } while (0)

#define AMPC_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  AMPC_ASSIGN_OR_RETURN_IMPL(AMPC_CONCAT(_status_or_, __LINE__), lhs, expr)
