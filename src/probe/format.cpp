// The probe's report as text (a block per URL) and as one JSON object.
#include <anyturn/probe/probe.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <sstream>

namespace anyturn::probe {
namespace {

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }
// JSON carries whole microseconds: integers read better than 1.69714406E2.
std::int64_t us(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

std::string ms_text(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", ms(d));
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string format_text(const report& r) {
  std::ostringstream o;
  o << r.url << "  " << (r.success ? "PASS" : "FAIL") << '\n';
  if (!r.error.empty()) o << "  error     " << r.error << '\n';
  if (!r.server.empty()) o << "  server    " << r.server << '\n';
  if (r.resolved.size() > 1 || (r.resolved.size() == 1 && r.server.empty())) {
    o << "  resolved  " << join(r.resolved) << '\n';
  }
  if (!r.software.empty()) o << "  software  " << r.software << '\n';
  if (!r.mapped.empty()) o << "  mapped    " << r.mapped << '\n';
  if (!r.relayed.empty()) o << "  relayed   " << join(r.relayed) << '\n';
  for (const auto& p : r.phases) {
    char line[96];
    std::snprintf(line, sizeof line, "  %-11s %-5s %12s", std::string(phase_name(p.which)).c_str(),
                  p.ok ? "ok" : "FAIL", ms_text(p.duration).c_str());
    o << line << '\n';
  }
  if (r.sent > 0) {
    char line[96];
    std::snprintf(line, sizeof line, "  packets   %u sent, %u received, loss %.1f%%", r.sent, r.received,
                  r.loss * 100.0);
    o << line << '\n';
  }
  if (r.rtt) {
    o << "  rtt       p50 " << ms_text(r.rtt->p50) << ", p99 " << ms_text(r.rtt->p99) << ", max "
      << ms_text(r.rtt->max) << '\n';
  }
  o << "  total     " << ms_text(r.duration) << '\n';
  return o.str();
}

std::string format_json(const report& r) {
  namespace bj = boost::json;
  bj::object o;
  o["url"] = r.url;
  o["success"] = r.success;
  o["error"] = r.error.empty() ? bj::value(nullptr) : bj::value(r.error);
  o["duration_us"] = us(r.duration);
  o["server"] = r.server;
  bj::array resolved;
  for (const auto& a : r.resolved) resolved.emplace_back(a);
  o["resolved"] = std::move(resolved);
  o["software"] = r.software;
  o["mapped"] = r.mapped;
  bj::array relayed;
  for (const auto& a : r.relayed) relayed.emplace_back(a);
  o["relayed"] = std::move(relayed);
  bj::array phases;
  for (const auto& p : r.phases) {
    bj::object po;
    po["phase"] = std::string(phase_name(p.which));
    po["ok"] = p.ok;
    po["duration_us"] = us(p.duration);
    if (!p.ok) po["error"] = p.error;
    phases.emplace_back(std::move(po));
  }
  o["phases"] = std::move(phases);
  o["sent"] = r.sent;
  o["received"] = r.received;
  o["loss"] = r.loss;
  if (r.rtt) {
    o["rtt_us"] = bj::object{{"p50", us(r.rtt->p50)}, {"p99", us(r.rtt->p99)}, {"max", us(r.rtt->max)}};
  } else {
    o["rtt_us"] = nullptr;
  }
  return bj::serialize(o);
}

}  // namespace anyturn::probe
