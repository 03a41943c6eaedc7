// anyturn::app — the admin API's sessions, answered by the workers.
//
// The HTTP thread calls these (http::server_config::list_sessions,
// end_session, end_sessions). Each call posts bounded steps to the workers
// (net::worker::post_to_core: at most `slots_per_step` slots of one
// worker's table a step) and waits for each answer up to `timeout`; a
// worker that does not answer in time makes the call throw
// std::runtime_error (the route answers 503). A worker runs one step
// between two rounds of its loop, so a listing of 100,000 sessions delays
// a worker's packets by one step at most, never by the whole walk.
#pragma once

#include <anyturn/turn/sessions.hpp>

#include <chrono>
#include <cstddef>
#include <vector>

namespace anyturn::net {
class worker;
}

namespace anyturn::app {

class session_admin {
 public:
  struct limits {
    std::size_t slots_per_step = 4096;   // slots one step walks
    std::size_t steps_per_listing = 64;  // a page ends after this many steps (then `next`)
    std::chrono::milliseconds timeout{2000};  // per step
  };

  // `workers[i]` is worker i (the session id's worker). They must outlive this.
  explicit session_admin(std::vector<net::worker*> workers, limits l);
  explicit session_admin(std::vector<net::worker*> workers) : session_admin(std::move(workers), limits{}) {}

  // One page from q.from: up to q.limit sessions, fewer when a page took
  // steps_per_listing steps; `next` is where the next page starts.
  [[nodiscard]] turn::session_listing list(const turn::session_query& q) const;
  // Ends the allocation `id` names (reason "admin"); false: none.
  bool end(const turn::session_id& id) const;
  // Ends every allocation `filter` matches, on every worker; how many.
  std::size_t end_matching(const turn::session_filter& filter) const;

 private:
  std::vector<net::worker*> workers_;
  limits limits_;
};

}  // namespace anyturn::app
