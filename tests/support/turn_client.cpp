#include "turn_client.hpp"
#include "sockaddr.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace anyturn::itest {

namespace {

using clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}


std::chrono::milliseconds remaining(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds{0};
}

bool is_response(stun::message_class c) {
  return c == stun::message_class::success_response || c == stun::message_class::error_response;
}

}  // namespace

bytes to_bytes(std::string_view s) {
  bytes out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::string to_string(stun::bytes_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

stun::endpoint loopback_like(const stun::endpoint& ep) {
  if (ep.is_v4()) return stun::endpoint::v4(0x7F000001u, 0);
  std::array<std::uint8_t, 16> ip{};
  ip[15] = 1;
  return stun::endpoint::v6(ip, 0);
}

// ---------------------------------------------------------------- udp_socket

udp_socket::udp_socket(const stun::endpoint& bind_to) {
  fd_ = ::socket(bind_to.is_v4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_errno("socket");
  if (!bind_to.is_v4()) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(bind_to, ss);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int e = errno;
    ::close(fd_);
    throw std::system_error(e, std::generic_category(), "bind " + bind_to.to_string());
  }
  socklen_t got = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &got) != 0) throw_errno("getsockname");
  local_ = from_sockaddr(ss);
}

udp_socket::~udp_socket() {
  if (fd_ >= 0) ::close(fd_);
}

void udp_socket::send_to(const stun::endpoint& to, stun::bytes_view data) const {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(to, ss);
  const ssize_t n = ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
  if (n < 0) throw_errno("sendto");
}

std::optional<udp_socket::datagram> udp_socket::recv(std::chrono::milliseconds timeout) const {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (r == 0) return std::nullopt;
    std::array<std::byte, 65536> buf{};
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n < 0) {
      // ICMP port unreachable from an earlier send surfaces here; skip it.
      if (errno == EINTR || errno == ECONNREFUSED || errno == EAGAIN) {
        if (remaining(deadline).count() == 0) return std::nullopt;
        continue;
      }
      throw_errno("recvfrom");
    }
    return datagram{from_sockaddr(ss), bytes(buf.begin(), buf.begin() + n)};
  }
}

// -------------------------------------------------------------- stun_message

stun_message::stun_message(bytes raw) : raw_(std::make_shared<const bytes>(std::move(raw))) {
  auto parsed = stun::parse_message(*raw_);
  if (!parsed) throw std::invalid_argument("stun_message: not a valid STUN message");
  view_ = std::make_shared<const stun::message_view>(*parsed);
}

int stun_message::error_code() const {
  auto a = view_->find(stun::attr::error_code);
  if (!a) return 0;
  auto v = stun::decode_error_code(*a);
  return v ? v->code : -1;
}

std::optional<stun::endpoint> stun_message::address(std::uint16_t type) const {
  auto a = view_->find(type);
  if (!a) return std::nullopt;
  const bool xored = type == stun::attr::xor_mapped_address || type == stun::attr::xor_peer_address ||
                     type == stun::attr::xor_relayed_address;
  auto v = stun::decode_address(*a, view_->tid(), xored);
  if (!v) return std::nullopt;
  return *v;
}

std::optional<std::string> stun_message::string(std::uint16_t type) const {
  auto a = view_->find(type);
  if (!a) return std::nullopt;
  auto v = stun::decode_string(*a, 65535);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<std::uint32_t> stun_message::u32(std::uint16_t type) const {
  auto a = view_->find(type);
  if (!a) return std::nullopt;
  auto v = stun::decode_u32(*a);
  if (!v) return std::nullopt;
  return *v;
}

std::optional<bytes> stun_message::value(std::uint16_t type) const {
  auto a = view_->find(type);
  if (!a) return std::nullopt;
  return bytes(a->value.begin(), a->value.end());
}

std::vector<std::uint16_t> stun_message::unknown_attributes() const {
  auto a = view_->find(stun::attr::unknown_attributes);
  if (!a) return {};
  std::array<std::uint16_t, 32> types{};
  auto n = stun::decode_unknown_attributes(*a, types);
  if (!n) return {};
  return {types.begin(), types.begin() + static_cast<std::ptrdiff_t>(*n)};
}

std::vector<std::uint16_t> stun_message::password_algorithms() const {
  auto a = view_->find(stun::attr::password_algorithms);
  if (!a) return {};
  std::array<std::uint16_t, 16> algs{};
  auto n = stun::decode_password_algorithms(*a, algs);
  if (!n) return {};
  return {algs.begin(), algs.begin() + static_cast<std::ptrdiff_t>(*n)};
}

bool stun_message::integrity_ok(stun::bytes_view key) const {
  return stun::check_message_integrity(*view_, key);
}

bool stun_message::integrity_sha256_ok(stun::bytes_view key) const {
  return stun::check_message_integrity_sha256(*view_, key);
}

std::string stun_message::describe() const {
  static constexpr const char* classes[] = {"request", "indication", "success", "error"};
  std::ostringstream os;
  os << "method=0x" << std::hex << method() << std::dec << " class="
     << classes[static_cast<int>(cls()) & 3];
  if (auto a = view_->find(stun::attr::error_code)) {
    if (auto v = stun::decode_error_code(*a)) os << " error=" << v->code << " '" << v->reason << "'";
  }
  os << " attrs=[";
  for (const auto& a : view_->attributes()) os << " 0x" << std::hex << a.type << std::dec;
  os << " ]";
  return os.str();
}

// --------------------------------------------------------------- turn_client

turn_client::turn_client(stun::endpoint server, stun::endpoint bind_to)
    : server_(server), socket_(bind_to) {}

turn_client::turn_client(stun::endpoint server) : turn_client(server, loopback_like(server)) {}

void turn_client::set_credentials(credentials c) {
  credentials_ = std::move(c);
  realm_.clear();
  nonce_.clear();
  md5_key_.reset();
  sha256_key_.reset();
}

std::optional<stun::bytes_view> turn_client::md5_key() const {
  if (!md5_key_) return std::nullopt;
  return stun::bytes_view(reinterpret_cast<const std::byte*>(md5_key_->data()), md5_key_->size());
}

std::optional<stun::bytes_view> turn_client::sha256_key() const {
  if (!sha256_key_) return std::nullopt;
  return stun::bytes_view(reinterpret_cast<const std::byte*>(sha256_key_->data()), sha256_key_->size());
}

stun::transaction_id turn_client::random_tid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  stun::transaction_id tid;
  for (auto& b : tid.bytes) b = static_cast<std::byte>(rng() & 0xFF);
  return tid;
}

bytes turn_client::build_request(stun::method m, const stun::transaction_id& tid,
                                 const attribute_writer& attrs, bool authenticate,
                                 bool fingerprint) const {
  std::array<std::byte, 2048> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(m), stun::message_class::request, tid);
  if (attrs) attrs(b);
  if (authenticate && credentials_ && md5_key_) {
    b.add_string(stun::attr::username, credentials_->username);
    b.add_string(stun::attr::realm, realm_);
    b.add_string(stun::attr::nonce, nonce_);
    if (credentials_->sha256 && sha256_key_) {
      // RFC 8489 §9.2.4: echo PASSWORD-ALGORITHMS and name the one we use.
      b.add_bytes(stun::attr::password_algorithms, password_algorithms_);
      b.add_password_algorithm(stun::password_algorithm::sha256);
      b.add_message_integrity_sha256(*sha256_key());
    } else {
      b.add_message_integrity(*md5_key());
    }
  }
  if (fingerprint) b.add_fingerprint();
  auto done = b.finish();
  if (!done) throw std::runtime_error("build_request: " + done.error.message());
  return bytes(done->begin(), done->end());
}

std::optional<stun_message> turn_client::exchange(const bytes& request, std::chrono::milliseconds timeout) {
  auto parsed = stun::parse_message(request);
  if (!parsed) throw std::invalid_argument("exchange: request does not parse");
  const stun::transaction_id tid = parsed->tid();

  const auto deadline = clock::now() + timeout;
  auto rto = std::chrono::milliseconds{250};
  socket_.send_to(server_, request);
  auto next_send = clock::now() + rto;
  for (;;) {
    const auto now = clock::now();
    if (now >= deadline) return std::nullopt;
    if (now >= next_send) {
      socket_.send_to(server_, request);  // RFC 8489 §6.2.1: same transaction id
      rto *= 2;
      next_send = now + rto;
    }
    const auto wait = std::min(remaining(deadline), remaining(next_send));
    auto d = socket_.recv(std::max(wait, std::chrono::milliseconds{1}));
    if (!d) continue;
    if (d->from != server_) continue;
    auto m = stun::parse_message(d->data);
    if (m && m->tid() == tid && is_response(m->cls())) return stun_message(std::move(d->data));
    inbox_.push_back(std::move(d->data));
  }
}

bool turn_client::learn_challenge(const stun_message& response) {
  auto realm = response.string(stun::attr::realm);
  auto nonce = response.string(stun::attr::nonce);
  if (!realm || !nonce || !credentials_) return false;
  realm_ = *realm;
  nonce_ = *nonce;
  md5_key_ = auth::derive_md5_key(credentials_->username, realm_, credentials_->password);
  sha256_key_ = auth::derive_sha256_key(credentials_->username, realm_, credentials_->password);
  if (auto algs = response.value(stun::attr::password_algorithms)) password_algorithms_ = *algs;
  return true;
}

std::optional<stun_message> turn_client::request_impl(stun::method m, const attribute_writer& attrs,
                                                      std::chrono::milliseconds timeout,
                                                      bool use_credentials) {
  const bool can_sign = use_credentials && credentials_.has_value();
  bool signed_request = can_sign && md5_key_.has_value();
  auto response = exchange(build_request(m, random_tid(), attrs, signed_request), timeout);
  // RFC 8489 §9.2.5: a 401 to an unsigned request, or a 438, carries the
  // realm and a fresh nonce; retry once, signed, with a new transaction.
  for (int retry = 0; retry < 2 && response && can_sign && response->is_error(); ++retry) {
    const int code = response->error_code();
    const bool challenge = (code == 401 && !signed_request) || code == 438;
    if (!challenge || !learn_challenge(*response)) break;
    signed_request = true;
    response = exchange(build_request(m, random_tid(), attrs, true), timeout);
  }
  return response;
}

std::optional<stun_message> turn_client::request(stun::method m, const attribute_writer& attrs,
                                                 std::chrono::milliseconds timeout) {
  return request_impl(m, attrs, timeout, true);
}

std::optional<stun_message> turn_client::request_unauthenticated(stun::method m, const attribute_writer& attrs,
                                                                 std::chrono::milliseconds timeout) {
  return request_impl(m, attrs, timeout, false);
}

std::optional<stun_message> turn_client::binding() {
  return request_unauthenticated(stun::method::binding, {});
}

std::optional<stun_message> turn_client::allocate(const allocate_options& o) {
  return request(stun::method::allocate, [&](stun::message_builder& b) {
    b.add_requested_transport(o.transport);
    if (o.family) b.add_address_family(stun::attr::requested_address_family, *o.family);
    if (o.lifetime) b.add_u32(stun::attr::lifetime, *o.lifetime);
    if (o.even_port) b.add_even_port(*o.even_port);
    if (o.dont_fragment) b.add_flag(stun::attr::dont_fragment);
  });
}

std::optional<stun_message> turn_client::refresh(std::uint32_t lifetime) {
  return request(stun::method::refresh,
                 [&](stun::message_builder& b) { b.add_u32(stun::attr::lifetime, lifetime); });
}

std::optional<stun_message> turn_client::create_permission(const std::vector<stun::endpoint>& peers) {
  return request(stun::method::create_permission, [&](stun::message_builder& b) {
    for (const auto& p : peers) b.add_address(stun::attr::xor_peer_address, p, true);
  });
}

std::optional<stun_message> turn_client::channel_bind(std::uint16_t channel, const stun::endpoint& peer) {
  return request(stun::method::channel_bind, [&](stun::message_builder& b) {
    b.add_channel_number(channel);
    b.add_address(stun::attr::xor_peer_address, peer, true);
  });
}

void turn_client::send_indication(const stun::endpoint& peer, stun::bytes_view payload) {
  std::array<std::byte, 2048> buf{};
  stun::message_builder b(buf, static_cast<std::uint16_t>(stun::method::send),
                          stun::message_class::indication, random_tid());
  b.add_address(stun::attr::xor_peer_address, peer, true);
  auto slot = b.add_data_slot(payload.size());
  if (slot.size() == payload.size() && !payload.empty()) std::memcpy(slot.data(), payload.data(), payload.size());
  b.add_fingerprint();
  auto done = b.finish();
  if (!done) throw std::runtime_error("send_indication: " + done.error.message());
  socket_.send_to(server_, *done);
}

void turn_client::send_channel_data(std::uint16_t channel, stun::bytes_view payload) {
  bytes buf(stun::channel_data_header_size + payload.size());
  stun::write_channel_data_header(buf, channel, static_cast<std::uint16_t>(payload.size()));
  if (!payload.empty()) std::memcpy(buf.data() + stun::channel_data_header_size, payload.data(), payload.size());
  socket_.send_to(server_, buf);
}

void turn_client::send_raw(stun::bytes_view data) { socket_.send_to(server_, data); }

std::optional<bytes> turn_client::recv_raw(std::chrono::milliseconds timeout) {
  if (!inbox_.empty()) {
    bytes b = std::move(inbox_.front());
    inbox_.pop_front();
    return b;
  }
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto d = socket_.recv(remaining(deadline));
    if (!d) return std::nullopt;
    if (d->from == server_) return std::move(d->data);
  }
}

std::optional<relayed_data> decode_relayed(bytes frame) {
  switch (stun::classify(frame)) {
    case stun::frame_kind::channel_data: {
      auto cd = stun::parse_channel_data(frame);
      if (!cd) return std::nullopt;
      relayed_data out;
      out.how = relayed_data::kind::channel_data;
      out.channel = cd->channel;
      out.payload.assign(cd->payload.begin(), cd->payload.end());
      return out;
    }
    case stun::frame_kind::stun: {
      auto m = stun::parse_message(frame);
      if (!m || m->cls() != stun::message_class::indication ||
          m->method() != static_cast<std::uint16_t>(stun::method::data)) {
        return std::nullopt;
      }
      stun_message msg(std::move(frame));
      relayed_data out;
      out.how = relayed_data::kind::data_indication;
      out.peer = msg.address(stun::attr::xor_peer_address);
      if (auto v = msg.value(stun::attr::data)) out.payload = std::move(*v);
      return out;
    }
    case stun::frame_kind::other:
      break;
  }
  return std::nullopt;
}

std::optional<relayed_data> turn_client::recv_data(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  for (;;) {
    auto raw = recv_raw(remaining(deadline));
    if (!raw) return std::nullopt;
    if (auto out = decode_relayed(std::move(*raw))) return out;
  }
}

std::string describe(const std::optional<stun_message>& m) {
  return m ? m->describe() : std::string("no response");
}

std::string rest_password(const std::string& secret, const std::string& username) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &mac_len);
  std::string out(4 * ((mac_len + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(mac_len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

}  // namespace anyturn::itest
