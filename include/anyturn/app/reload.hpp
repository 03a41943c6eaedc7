// anyturn::app — config hot reload (SIGHUP, POST /admin/reload): what a
// re-read config changes, what it cannot change without a restart, and the
// new snapshot the workers switch to (turn::config_board).
//
// Pure functions of the running config and the new one, so unit tests check
// them without a daemon; app.cpp runs them and publishes the result.
#pragma once

#include <anyturn/config/config.hpp>
#include <anyturn/turn/worker_core.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace anyturn::app {

// Tenants a reload may add over the life of the process (their indices
// must fit the quota table sized at start-up).
inline constexpr std::size_t reload_tenant_spare = 32;

// Takes every part of `next` that a reload cannot apply from `running`
// (listeners, relay addresses and ports, threads, streams.*, http.listen and
// the other restart-only keys; see docs/configuration.md) and returns the
// key paths whose value differed: they are ignored until a restart.
std::vector<std::string> keep_restart_only(const config::server_config& running,
                                           config::server_config& next);

// Orders next.tenants so that each tenant of `running` keeps its index (the
// index of live allocations, counters and quotas): a tenant the file no
// longer has stays as an empty placeholder (no users, secrets, keys), a new
// one is appended. False, with `error`, when that makes more than
// `capacity` tenants.
bool stabilise_tenants(const config::server_config& running, config::server_config& next,
                       std::size_t capacity, std::string& error);

// The snapshot the workers switch to: built from `next` as at start-up, with
// what lives across reloads taken from `current`: the relay port pools, the
// own addresses, the nonce service, the quota counters (new ones only where
// none existed), the fleet signals, the revocation board and the config
// board. `usage` is left as in `current` (the caller replaces it when the
// path changed). Throws std::runtime_error like make_shared_state.
std::shared_ptr<turn::shared_state> reloaded_state(const turn::shared_state& current,
                                                   const config::server_config& next);

}  // namespace anyturn::app
