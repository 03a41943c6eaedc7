// anyturn::metrics — a small pull-based metrics registry that renders the
// Prometheus text exposition format 0.0.4.
//
// Nothing here runs on a relay worker. Workers only bump their own relaxed
// atomics (relay::worker_counters, histogram_cell); at scrape time the HTTP
// thread calls registry::render(), which runs every collector. A collector
// loads the workers' atomics, sums them and hands the totals to a `sink`.
//
// The sink groups samples by family, so several collectors may contribute to
// one family (e.g. one turn_metrics collector per tenant, each adding its own
// `tenant` label): the family's HELP/TYPE lines are written once, and all its
// samples follow them, as the format requires.
#pragma once

#include <anyturn/metrics/histogram.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace anyturn::metrics {

enum class metric_type : std::uint8_t { counter, gauge, histogram };
const char* to_string(metric_type t);

// One label of a sample. Views: they need to live only for the call.
struct label {
  std::string_view name;
  std::string_view value;
};

// A read-only list of labels, from a braced list or a span.
// The braced list must outlive the call only (a full expression).
class label_list {
 public:
  label_list() = default;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"  // a view, used within the call only
#endif
  label_list(std::initializer_list<label> l) : data_(l.begin()), size_(l.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  label_list(std::span<const label> s) : data_(s.data()), size_(s.size()) {}
  [[nodiscard]] const label* begin() const { return data_; }
  [[nodiscard]] const label* end() const { return data_ + size_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

 private:
  const label* data_ = nullptr;
  std::size_t size_ = 0;
};

// A sample value: integers are printed exactly, doubles in shortest form
// (NaN, +Inf and -Inf as the format spells them).
class sample_value {
 public:
  template <std::integral T>
  sample_value(T v)  // NOLINT(google-explicit-constructor): implicit by design
      : kind_(std::is_signed_v<T> ? kind::i64 : kind::u64),
        i_(static_cast<std::int64_t>(v)),
        u_(static_cast<std::uint64_t>(v)) {}
  sample_value(double v) : kind_(kind::f64), d_(v) {}  // NOLINT(google-explicit-constructor)
  void append_to(std::string& out) const;

 private:
  enum class kind : std::uint8_t { i64, u64, f64 } kind_;
  std::int64_t i_ = 0;
  std::uint64_t u_ = 0;
  double d_ = 0;
};

// Where collectors put their samples during one render(). Not thread-safe;
// one sink lives for one scrape.
//
// Names: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__"; a histogram may not use
// the label "le". A counter's name gets "_total" appended unless it already
// ends with it. A sample whose names are invalid, or whose family was first
// declared with another type, is dropped and counted in rejected().
class sink {
 public:
  void counter(std::string_view name, std::string_view help, label_list labels, sample_value v);
  void gauge(std::string_view name, std::string_view help, label_list labels, sample_value v);
  void histogram(std::string_view name, std::string_view help, label_list labels,
                 const histogram_snapshot& h);

  // The exposition text of everything added so far, families in the order
  // they were first seen.
  [[nodiscard]] std::string text() const;
  [[nodiscard]] std::size_t rejected() const { return rejected_; }
  void reject() { ++rejected_; }
  // Moves `other`'s samples into their families here (added if new).
  void merge(sink&& other);

 private:
  struct family {
    std::string name;  // as written in HELP/TYPE (counters: with _total)
    std::string help;
    metric_type type;
    std::string samples;  // rendered sample lines
  };
  family* find_or_add(std::string_view name, std::string_view help, metric_type type);
  // One counter or gauge sample into its family (rejected if its labels are bad).
  void add_sample(std::string_view name, std::string_view help, metric_type type,
                  label_list labels, const sample_value& v);
  bool labels_valid(label_list labels, bool histogram) const;

  std::vector<family> families_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t rejected_ = 0;
};

// A counter family the registry owns, for code that is not a relay worker
// (e.g. the HTTP server counting its requests). Thread-safe; increments take
// a mutex, so never use it on a worker thread. Label values must come from a
// small fixed set (routes, status codes, configured tenants): every distinct
// combination is a series kept forever.
class counter_family {
 public:
  counter_family(std::string name, std::string help, std::vector<std::string> label_names);
  // `values` in the order of the label names; a wrong count is ignored.
  void inc(std::initializer_list<std::string_view> values, std::uint64_t by = 1);
  [[nodiscard]] std::uint64_t value(std::initializer_list<std::string_view> values) const;
  void collect(sink& s) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::uint64_t> values_;
};

// A gauge family the registry owns; same rules as counter_family.
class gauge_family {
 public:
  gauge_family(std::string name, std::string help, std::vector<std::string> label_names);
  void set(std::initializer_list<std::string_view> values, double v);
  void add(std::initializer_list<std::string_view> values, double delta);
  [[nodiscard]] double value(std::initializer_list<std::string_view> values) const;
  void collect(sink& s) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, double> values_;
};

class registry {
 public:
  using collector = std::function<void(sink&)>;
  using collector_id = std::uint64_t;

  registry() = default;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Any thread. The collector runs on the scraping thread, under the
  // registry's lock: it must not call back into the registry, and what it
  // reads must outlive it (or be removed with remove_collector first).
  // A collector that throws loses its samples for that scrape only.
  collector_id add_collector(collector c);
  void remove_collector(collector_id id);

  // Owned families; the references stay valid for the registry's lifetime.
  counter_family& add_counter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  gauge_family& add_gauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});

  // Any thread: runs owned families then collectors (in the order added)
  // into one sink. Concurrent renders are serialised.
  void collect(sink& s) const;
  [[nodiscard]] std::string render() const;

 private:
  mutable std::mutex mutex_;
  collector_id next_id_ = 1;
  std::vector<std::pair<collector_id, collector>> collectors_;
  std::vector<std::unique_ptr<counter_family>> counters_;
  std::vector<std::unique_ptr<gauge_family>> gauges_;
};

// The Content-Type of render()'s output.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

// Name checks used by the sink (exposed for tests and for callers that take
// names from configuration).
bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);
// Appends `v` escaped for a label value (\\, \", \n).
void escape_label_value(std::string& out, std::string_view v);
// Appends `v` escaped for a HELP line (\\, \n).
void escape_help(std::string& out, std::string_view v);

}  // namespace anyturn::metrics
