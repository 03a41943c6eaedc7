// The admin API's sessions: steps posted to the workers, answers awaited on
// the HTTP thread (see session_admin.hpp).
#include <anyturn/app/session_admin.hpp>

#include <anyturn/net/worker.hpp>

#include <future>
#include <memory>
#include <stdexcept>
#include <string>

namespace anyturn::app {

namespace {

// Runs `step(core, now)` on worker `w`'s thread and returns its result, or
// throws when it does not come within `timeout` (the step still runs later;
// it owns copies of everything it reads).
template <typename Step>
turn::session_page run_on(net::worker& w, unsigned index, Step step, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<turn::session_page>>();
  auto answer = promise->get_future();
  w.post_to_core([promise, step = std::move(step)](turn::worker_core& core, const relay::now_t& now) {
    try {
      promise->set_value(step(core, now));
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  if (answer.wait_for(timeout) != std::future_status::ready) {
    throw std::runtime_error("worker " + std::to_string(index) + " did not answer within " +
                             std::to_string(timeout.count()) + " ms");
  }
  try {
    return answer.get();
  } catch (const std::future_error&) {  // dropped unrun: the worker stops
    throw std::runtime_error("worker " + std::to_string(index) + " is stopping");
  }
}

}  // namespace

session_admin::session_admin(std::vector<net::worker*> workers, limits l)
    : workers_(std::move(workers)), limits_(l) {}

turn::session_listing session_admin::list(const turn::session_query& q) const {
  turn::session_listing out;
  turn::session_cursor at = q.from;
  const std::size_t slots = limits_.slots_per_step;
  for (std::size_t steps = 0; at.worker < workers_.size() && out.sessions.size() < q.limit &&
                              steps < limits_.steps_per_listing;
       ++steps) {
    const std::size_t want = q.limit - out.sessions.size();
    auto page = run_on(
        *workers_[at.worker], at.worker,
        [filter = q.filter, from = at.slot, want, slots](turn::worker_core& core, const relay::now_t& now) {
          return core.list_sessions(filter, from, want, slots, now);
        },
        limits_.timeout);
    for (auto& s : page.sessions) out.sessions.push_back(std::move(s));
    at = page.end ? turn::session_cursor{at.worker + 1, 0} : turn::session_cursor{at.worker, page.next_slot};
  }
  if (at.worker < workers_.size()) out.next = at;
  return out;
}

bool session_admin::end(const turn::session_id& id) const {
  if (id.worker >= workers_.size()) return false;
  const auto page = run_on(
      *workers_[id.worker], id.worker,
      [id](turn::worker_core& core, const relay::now_t& now) {
        turn::session_page p;
        p.ended = core.end_session(id, now) ? 1 : 0;
        p.end = true;
        return p;
      },
      limits_.timeout);
  return page.ended > 0;
}

std::size_t session_admin::end_matching(const turn::session_filter& filter) const {
  std::size_t ended = 0;
  const std::size_t slots = limits_.slots_per_step;
  for (unsigned w = 0; w < workers_.size(); ++w) {
    for (std::uint32_t from = 0;;) {
      const auto page = run_on(
          *workers_[w], w,
          [filter, from, slots](turn::worker_core& core, const relay::now_t& now) {
            return core.end_sessions(filter, from, slots, now);
          },
          limits_.timeout);
      ended += page.ended;
      if (page.end) break;
      from = page.next_slot;
    }
  }
  return ended;
}

}  // namespace anyturn::app
