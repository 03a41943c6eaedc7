// Prometheus text exposition format 0.0.4: HELP/TYPE lines, label escaping,
// counters (_total), gauges and histograms (_bucket{le}, _sum, _count).
#include <anyturn/metrics/registry.hpp>

#include <charconv>
#include <cmath>
#include <exception>
#include <system_error>

namespace anyturn::metrics {
namespace {

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

// name{a="x",b="y"<extra>} — `extra` is an already-rendered label (le="...").
void append_series(std::string& out, std::string_view name, std::string_view suffix,
                   label_list labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const label& l : labels) {
    if (!first) out += ',';
    first = false;
    out += l.name;
    out += "=\"";
    escape_label_value(out, l.value);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

std::vector<std::string> to_key(std::initializer_list<std::string_view> values) {
  std::vector<std::string> key;
  key.reserve(values.size());
  for (auto v : values) key.emplace_back(v);
  return key;
}

template <typename Map>
void emit_owned(sink& s, const std::string& name, const std::string& help,
                const std::vector<std::string>& label_names, const Map& values, bool counter) {
  std::vector<label> labels(label_names.size());
  for (const auto& [key, v] : values) {
    for (std::size_t i = 0; i < label_names.size(); ++i) labels[i] = {label_names[i], key[i]};
    if (counter) {
      s.counter(name, help, std::span<const label>(labels), v);
    } else {
      s.gauge(name, help, std::span<const label>(labels), v);
    }
  }
}

}  // namespace

const char* to_string(metric_type t) {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

bool is_valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_name_start(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(is_name_start(c) || is_digit(c) || c == ':')) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0]) || name.starts_with("__")) return false;
  for (char c : name) {
    if (!(is_name_start(c) || is_digit(c))) return false;
  }
  return true;
}

void escape_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void escape_help(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void sample_value::append_to(std::string& out) const {
  char buf[32];
  switch (kind_) {
    case kind::i64: {
      const auto r = std::to_chars(buf, buf + sizeof buf, i_);
      out.append(buf, r.ptr);
      return;
    }
    case kind::u64: {
      const auto r = std::to_chars(buf, buf + sizeof buf, u_);
      out.append(buf, r.ptr);
      return;
    }
    case kind::f64: append_double(out, d_); return;
  }
}

// ---- sink ----

sink::family* sink::find_or_add(std::string_view name, std::string_view help, metric_type type) {
  if (!is_valid_metric_name(name)) return nullptr;
  std::string key(name);
  if (auto it = index_.find(key); it != index_.end()) {
    family& f = families_[it->second];
    return f.type == type ? &f : nullptr;
  }
  index_.emplace(key, families_.size());
  families_.push_back(family{std::move(key), std::string(help), type, {}});
  return &families_.back();
}

bool sink::labels_valid(label_list labels, bool histogram) const {
  for (const label& l : labels) {
    if (!is_valid_label_name(l.name)) return false;
    if (histogram && l.name == "le") return false;
  }
  // Duplicate label names make an invalid series.
  for (const label* a = labels.begin(); a != labels.end(); ++a) {
    for (const label* b = a + 1; b != labels.end(); ++b) {
      if (a->name == b->name) return false;
    }
  }
  return true;
}

void sink::counter(std::string_view name, std::string_view help, label_list labels,
                   sample_value v) {
  std::string full(name);
  if (!ends_with(full, "_total")) full += "_total";
  add_sample(full, help, metric_type::counter, labels, v);
}

void sink::gauge(std::string_view name, std::string_view help, label_list labels,
                 sample_value v) {
  add_sample(name, help, metric_type::gauge, labels, v);
}

void sink::add_sample(std::string_view name, std::string_view help, metric_type type,
                      label_list labels, const sample_value& v) {
  family* f = labels_valid(labels, false) ? find_or_add(name, help, type) : nullptr;
  if (f == nullptr) {
    ++rejected_;
    return;
  }
  append_series(f->samples, f->name, {}, labels);
  f->samples += ' ';
  v.append_to(f->samples);
  f->samples += '\n';
}

void sink::histogram(std::string_view name, std::string_view help, label_list labels,
                     const histogram_snapshot& h) {
  family* f =
      labels_valid(labels, true) ? find_or_add(name, help, metric_type::histogram) : nullptr;
  if (f == nullptr || h.counts.size() != h.upper_bounds.size() + 1) {
    ++rejected_;
    return;
  }
  std::string& out = f->samples;
  std::uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i < h.upper_bounds.size(); ++i) {
    cumulative += h.counts[i];
    le.clear();
    append_double(le, h.upper_bounds[i]);
    append_series(out, f->name, "_bucket", labels, "le", le);
    out += ' ';
    sample_value(cumulative).append_to(out);
    out += '\n';
  }
  cumulative += h.counts.back();
  append_series(out, f->name, "_bucket", labels, "le", "+Inf");
  out += ' ';
  sample_value(cumulative).append_to(out);
  out += '\n';
  append_series(out, f->name, "_sum", labels);
  out += ' ';
  append_double(out, h.sum);
  out += '\n';
  append_series(out, f->name, "_count", labels);
  out += ' ';
  sample_value(cumulative).append_to(out);
  out += '\n';
}

void sink::merge(sink&& other) {
  rejected_ += other.rejected_;
  for (family& f : other.families_) {
    family* mine = find_or_add(f.name, f.help, f.type);
    if (mine == nullptr) {
      ++rejected_;
      continue;
    }
    if (mine->samples.empty()) {
      mine->samples = std::move(f.samples);
    } else {
      mine->samples += f.samples;
    }
  }
}

std::string sink::text() const {
  std::string out;
  std::size_t size = 0;
  for (const family& f : families_) size += f.name.size() * 2 + f.help.size() + f.samples.size() + 32;
  out.reserve(size);
  for (const family& f : families_) {
    if (f.samples.empty()) continue;
    out += "# HELP ";
    out += f.name;
    out += ' ';
    escape_help(out, f.help);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += to_string(f.type);
    out += '\n';
    out += f.samples;
  }
  return out;
}

// ---- owned families ----

counter_family::counter_family(std::string name, std::string help,
                               std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void counter_family::inc(std::initializer_list<std::string_view> values, std::uint64_t by) {
  if (values.size() != label_names_.size()) return;
  auto key = to_key(values);
  const std::lock_guard lock(mutex_);
  values_[std::move(key)] += by;
}

std::uint64_t counter_family::value(std::initializer_list<std::string_view> values) const {
  const auto key = to_key(values);
  const std::lock_guard lock(mutex_);
  const auto it = values_.find(key);
  return it == values_.end() ? 0 : it->second;
}

void counter_family::collect(sink& s) const {
  const std::lock_guard lock(mutex_);
  emit_owned(s, name_, help_, label_names_, values_, true);
}

gauge_family::gauge_family(std::string name, std::string help,
                           std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void gauge_family::set(std::initializer_list<std::string_view> values, double v) {
  if (values.size() != label_names_.size()) return;
  auto key = to_key(values);
  const std::lock_guard lock(mutex_);
  values_[std::move(key)] = v;
}

void gauge_family::add(std::initializer_list<std::string_view> values, double delta) {
  if (values.size() != label_names_.size()) return;
  auto key = to_key(values);
  const std::lock_guard lock(mutex_);
  values_[std::move(key)] += delta;
}

double gauge_family::value(std::initializer_list<std::string_view> values) const {
  const auto key = to_key(values);
  const std::lock_guard lock(mutex_);
  const auto it = values_.find(key);
  return it == values_.end() ? 0 : it->second;
}

void gauge_family::collect(sink& s) const {
  const std::lock_guard lock(mutex_);
  emit_owned(s, name_, help_, label_names_, values_, false);
}

// ---- registry ----

registry::collector_id registry::add_collector(collector c) {
  const std::lock_guard lock(mutex_);
  const collector_id id = next_id_++;
  collectors_.emplace_back(id, std::move(c));
  return id;
}

void registry::remove_collector(collector_id id) {
  const std::lock_guard lock(mutex_);
  std::erase_if(collectors_, [id](const auto& entry) { return entry.first == id; });
}

counter_family& registry::add_counter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  const std::lock_guard lock(mutex_);
  counters_.push_back(
      std::make_unique<counter_family>(std::move(name), std::move(help), std::move(label_names)));
  return *counters_.back();
}

gauge_family& registry::add_gauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  const std::lock_guard lock(mutex_);
  gauges_.push_back(
      std::make_unique<gauge_family>(std::move(name), std::move(help), std::move(label_names)));
  return *gauges_.back();
}

void registry::collect(sink& s) const {
  const std::lock_guard lock(mutex_);
  for (const auto& c : counters_) c->collect(s);
  for (const auto& g : gauges_) g->collect(s);
  for (const auto& [id, c] : collectors_) {
    // Each collector writes into its own sink, merged only if it completes,
    // so one that throws loses its samples for this scrape and nothing else.
    sink part;
    try {
      c(part);
    } catch (const std::exception&) {
      s.reject();
      continue;
    }
    s.merge(std::move(part));
  }
}

std::string registry::render() const {
  sink s;
  collect(s);
  return s.text();
}

}  // namespace anyturn::metrics
