// anyturn::common — what a log line is about, per thread.
//
// Both log formats (text and JSON, log.format / --log-format) read these
// fields when they write a line: JSON lines carry them as "worker",
// "session", "user", "tenant", "client", "relay" and "peer"; text lines end
// with "session=... user=..." (docs/logging.md). A worker thread sets
// `worker` once; code that logs about an allocation opens a log_scope
// around the call. The logger is synchronous, so the formatter runs on the
// thread that logs and sees that thread's fields.
//
// The views must outlive the scope that sets them. Setting fields costs a
// few stores and never allocates.
#pragma once

#include <cstdint>
#include <string_view>

namespace anyturn::common {

struct log_fields {
  int worker = -1;                 // the worker thread's index; -1: not a worker
  bool has_session = false;
  std::uint64_t session = 0;       // turn::session_id::packed(); printed as 16 hex digits
  std::string_view user;           // the username as authenticated
  std::string_view tenant;         // the tenant's id; empty for the default tenant (auth.*)
  std::string_view client;         // the client's transport address, "ADDR:PORT"
  std::string_view relay;          // the relayed transport address
  std::string_view peer;           // the peer's address
};

// This thread's fields.
inline log_fields& this_thread_log_fields() {
  thread_local log_fields fields;
  return fields;
}

// Sets fields for its lifetime and restores the previous ones (scopes nest;
// the worker index is kept).
class log_scope {
 public:
  log_scope() : saved_(this_thread_log_fields()) {}
  ~log_scope() {
    auto& f = this_thread_log_fields();
    const int worker = f.worker;
    f = saved_;
    f.worker = worker;
  }
  log_scope(const log_scope&) = delete;
  log_scope& operator=(const log_scope&) = delete;

  log_scope& session(std::uint64_t packed) {
    auto& f = this_thread_log_fields();
    f.has_session = true;
    f.session = packed;
    return *this;
  }
  log_scope& user(std::string_view v) { return set(&log_fields::user, v); }
  log_scope& tenant(std::string_view v) { return set(&log_fields::tenant, v); }
  log_scope& client(std::string_view v) { return set(&log_fields::client, v); }
  log_scope& relay(std::string_view v) { return set(&log_fields::relay, v); }
  log_scope& peer(std::string_view v) { return set(&log_fields::peer, v); }

 private:
  log_scope& set(std::string_view log_fields::*field, std::string_view v) {
    this_thread_log_fields().*field = v;
    return *this;
  }
  log_fields saved_;
};

}  // namespace anyturn::common
