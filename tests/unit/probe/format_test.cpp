// format_text and format_json (src/probe/format.cpp): what an operator
// reads, and the JSON fields scripts depend on.
#include <anyturn/probe/probe.hpp>

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace anyturn::probe {
namespace {

using namespace std::chrono_literals;

report passed() {
  report r;
  r.url = "turn:127.0.0.1:3478?transport=udp";
  r.success = true;
  r.server = "127.0.0.1:3478";
  r.resolved = {"127.0.0.1:3478"};
  r.software = "anyturn 0.1.0";
  r.mapped = "127.0.0.1:40000";
  r.relayed = {"127.0.0.1:50000", "127.0.0.1:50001"};
  for (const auto p : {phase::resolve, phase::connect, phase::allocate, phase::permission,
                       phase::channel, phase::relay, phase::refresh, phase::deallocate}) {
    r.phases.push_back({p, 1500us, true, ""});
  }
  r.sent = 20;
  r.received = 20;
  r.rtt = rtt_summary{250us, 900us, 1200us};
  r.duration = 12ms;
  return r;
}

report failed() {
  report r;
  r.url = "turn:127.0.0.1:3478";
  r.error = "allocate: 441 Wrong Credentials";
  r.server = "127.0.0.1:3478";
  r.resolved = {"127.0.0.1:3478"};
  r.phases = {{phase::resolve, 10us, true, ""},
              {phase::connect, 10us, true, ""},
              {phase::allocate, 2ms, false, "allocate: 441 Wrong Credentials"}};
  r.duration = 3ms;
  return r;
}

TEST(format_text, a_pass_shows_phases_addresses_rtt_and_loss) {
  const auto text = format_text(passed());
  EXPECT_NE(text.find("turn:127.0.0.1:3478?transport=udp  PASS"), std::string::npos) << text;
  EXPECT_NE(text.find("relayed   127.0.0.1:50000, 127.0.0.1:50001"), std::string::npos) << text;
  EXPECT_NE(text.find("software  anyturn 0.1.0"), std::string::npos) << text;
  EXPECT_NE(text.find("deallocate"), std::string::npos) << text;
  EXPECT_NE(text.find("1.500 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("20 sent, 20 received, loss 0.0%"), std::string::npos) << text;
  EXPECT_NE(text.find("p50 0.250 ms, p99 0.900 ms, max 1.200 ms"), std::string::npos) << text;
  EXPECT_EQ(text.find("error"), std::string::npos) << text;
}

TEST(format_text, a_failure_shows_the_error_and_the_failed_phase) {
  const auto text = format_text(failed());
  EXPECT_NE(text.find("FAIL"), std::string::npos) << text;
  EXPECT_NE(text.find("error     allocate: 441 Wrong Credentials"), std::string::npos) << text;
  EXPECT_NE(text.find("allocate    FAIL"), std::string::npos) << text;
  EXPECT_EQ(text.find("rtt"), std::string::npos) << text;
}

TEST(format_json, one_line_with_every_field) {
  const auto line = format_json(passed());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto v = boost::json::parse(line).as_object();
  EXPECT_EQ(v.at("url").as_string(), "turn:127.0.0.1:3478?transport=udp");
  EXPECT_TRUE(v.at("success").as_bool());
  EXPECT_TRUE(v.at("error").is_null());
  EXPECT_EQ(v.at("relayed").as_array().size(), 2u);
  EXPECT_EQ(v.at("software").as_string(), "anyturn 0.1.0");
  EXPECT_EQ(v.at("sent").to_number<int>(), 20);
  EXPECT_EQ(v.at("received").to_number<int>(), 20);
  EXPECT_DOUBLE_EQ(v.at("loss").to_number<double>(), 0.0);
  EXPECT_EQ(v.at("rtt_us").at("p50").as_int64(), 250);
  EXPECT_EQ(v.at("rtt_us").at("p99").as_int64(), 900);
  EXPECT_EQ(v.at("rtt_us").at("max").as_int64(), 1200);
  EXPECT_EQ(v.at("duration_us").as_int64(), 12000);
  const auto& phases = v.at("phases").as_array();
  ASSERT_EQ(phases.size(), 8u);
  EXPECT_EQ(phases[0].at("phase").as_string(), "resolve");
  EXPECT_EQ(phases[0].at("duration_us").as_int64(), 1500);
  EXPECT_EQ(phases[7].at("phase").as_string(), "deallocate");
}

TEST(format_json, a_failure_names_the_phase) {
  const auto v = boost::json::parse(format_json(failed())).as_object();
  EXPECT_FALSE(v.at("success").as_bool());
  EXPECT_EQ(v.at("error").as_string(), "allocate: 441 Wrong Credentials");
  EXPECT_TRUE(v.at("rtt_us").is_null());
  const auto& last = v.at("phases").as_array().back();
  EXPECT_EQ(last.at("phase").as_string(), "allocate");
  EXPECT_FALSE(last.at("ok").as_bool());
  EXPECT_EQ(last.at("error").as_string(), "allocate: 441 Wrong Credentials");
}

TEST(format_json, strings_are_escaped) {
  report r = failed();
  r.software = "quote \" and backslash \\";
  const auto v = boost::json::parse(format_json(r)).as_object();
  EXPECT_EQ(v.at("software").as_string(), "quote \" and backslash \\");
}

}  // namespace
}  // namespace anyturn::probe
