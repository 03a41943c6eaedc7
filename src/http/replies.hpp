// The JSON answers every route builds (private to src/http/: api.cpp and
// admin_sessions.cpp).
#pragma once

#include <anyturn/http/api.hpp>
#include <anyturn/http/json.hpp>

#include <boost/beast/http/status.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace anyturn::http {

response make_response(const request& req, boost::beast::http::status status,
                       std::string_view content_type, std::string body);
// `body` and a newline, application/json, Cache-Control: no-store.
response json_response(const request& req, boost::beast::http::status status, std::string body);
// {"error": message}
response json_error(const request& req, boost::beast::http::status status, std::string_view message);
// 405 with Allow: `allow`.
response method_not_allowed(const request& req, std::string_view allow);
// The request body as a flat JSON object (an empty body is {}), or nullopt
// and the 400 that says why not in `error`.
std::optional<json::object> read_body(const request& req, std::optional<response>& error);

}  // namespace anyturn::http
