// Functions that run inside the Chromium page (passed to page.evaluate). They
// are serialised with Function.prototype.toString, so each one is
// self-contained: no imports, no closures over module state.

/// Two RTCPeerConnections, relay-only, through one TURN URL. Opens an ordered
/// DataChannel, sends `p.count` messages each way, and returns what arrived,
/// the gathered candidates, any icecandidateerror, timings, and the selected
/// candidate pair of each side as read from getStats().
export async function relay_exchange(p) {
  const t0 = performance.now();
  const since = () => Math.round(performance.now() - t0);
  const out = {
    candidates: { a: [], b: [] },
    errors: [],
    received: { a: [], b: [] },
    selected: {},
    connected_ms: null,
    exchanged_ms: null,
    total_ms: null,
  };
  const config = {
    iceServers: [{ urls: p.url, username: p.username, credential: p.credential }],
    iceTransportPolicy: 'relay',
  };
  const pcs = { a: new RTCPeerConnection(config), b: new RTCPeerConnection(config) };
  const peer_of = { a: 'b', b: 'a' };
  const pending = { a: [], b: [] };  // candidates for X held until X has a remote description
  let fail_early;
  const early_failure = new Promise((_, reject) => (fail_early = reject));
  early_failure.catch(() => {});  // observed through bounded(); never unhandled
  const bounded = (promise, what) => Promise.race([
    promise,
    early_failure,
    new Promise((_, reject) => setTimeout(
      () => reject(new Error(`timed out after ${p.timeout_ms} ms waiting for ${what}`)), p.timeout_ms - since())),
  ]);
  const deliver = (to, candidate) => {
    if (pcs[to].remoteDescription) {
      pcs[to].addIceCandidate(candidate).catch((e) => out.errors.push({ pc: to, add_ice_candidate: String(e) }));
    } else {
      pending[to].push(candidate);
    }
  };
  const flush = (to) => {
    for (const c of pending[to].splice(0)) deliver(to, c);
  };

  try {
    for (const [name, pc] of Object.entries(pcs)) {
      pc.addEventListener('icecandidate', (e) => {
        if (!e.candidate) return;
        out.candidates[name].push({
          type: e.candidate.type, protocol: e.candidate.protocol, relay_protocol: e.candidate.relayProtocol,
          address: e.candidate.address, port: e.candidate.port,
        });
        deliver(peer_of[name], e.candidate);
      });
      pc.addEventListener('icecandidateerror', (e) => {
        out.errors.push({ pc: name, code: e.errorCode, text: e.errorText, url: e.url });
      });
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete' && out.candidates[name].length === 0) {
          fail_early(new Error(`peer ${name} finished gathering without a relay candidate`));
        }
      });
      pc.addEventListener('iceconnectionstatechange', () => {
        if (pc.iceConnectionState === 'failed') fail_early(new Error(`peer ${name}: ICE failed`));
      });
    }

    const channel_a = pcs.a.createDataChannel('anyturn', { ordered: true });
    const channel_b_promise = new Promise((resolve) => pcs.b.addEventListener('datachannel', (e) => resolve(e.channel), { once: true }));
    const open = (channel) => (channel.readyState === 'open'
      ? Promise.resolve(channel)
      : new Promise((resolve) => channel.addEventListener('open', () => resolve(channel), { once: true })));

    const offer = await pcs.a.createOffer();
    await pcs.a.setLocalDescription(offer);
    await pcs.b.setRemoteDescription(offer);
    flush('b');
    const answer = await pcs.b.createAnswer();
    await pcs.b.setLocalDescription(answer);
    await pcs.a.setRemoteDescription(answer);
    flush('a');

    const channels = {
      a: await bounded(open(channel_a), 'the DataChannel to open on peer a'),
      b: await bounded(channel_b_promise.then(open), 'the DataChannel to open on peer b'),
    };
    out.connected_ms = since();

    // Each side sends `count` messages of growing size and collects the other's.
    const all_arrived = Promise.all(Object.entries(channels).map(([name, channel]) => new Promise((resolve) => {
      channel.addEventListener('message', (e) => {
        out.received[name].push(String(e.data));
        if (out.received[name].length === p.count) resolve();
      });
    })));
    for (const [name, channel] of Object.entries(channels)) {
      for (let i = 0; i < p.count; ++i) channel.send(`${name}->${peer_of[name]} #${i} ${'x'.repeat(i * 40)}`);
    }
    await bounded(all_arrived, `${p.count} messages each way`);
    out.exchanged_ms = since();

    // The pair ICE selected, as getStats() reports it (transport first, then
    // the nominated succeeded pair for browsers that do not fill the former).
    for (const [name, pc] of Object.entries(pcs)) {
      const stats = await bounded(pc.getStats(), `getStats() on peer ${name}`);
      const by_id = new Map();
      stats.forEach((s) => by_id.set(s.id, s));
      let pair = null;
      for (const s of by_id.values()) {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = by_id.get(s.selectedCandidatePairId) || null;
      }
      if (!pair) {
        for (const s of by_id.values()) {
          if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
        }
      }
      if (!pair) {
        out.selected[name] = null;
        continue;
      }
      const local = by_id.get(pair.localCandidateId) || {};
      const remote = by_id.get(pair.remoteCandidateId) || {};
      out.selected[name] = {
        state: pair.state,
        local: {
          type: local.candidateType, relay_protocol: local.relayProtocol, protocol: local.protocol,
          address: local.address, port: local.port, url: local.url,
        },
        remote: { type: remote.candidateType, protocol: remote.protocol, address: remote.address, port: remote.port },
        bytes_sent: pair.bytesSent,
        bytes_received: pair.bytesReceived,
        rtt_ms: pair.currentRoundTripTime === undefined ? null : pair.currentRoundTripTime * 1000,
      };
    }
  } catch (e) {
    out.failure = String(e && e.message ? e.message : e);
  } finally {
    for (const pc of Object.values(pcs)) pc.close();
    out.total_ms = since();
  }
  return out;
}

/// One relay-only RTCPeerConnection that gathers with the given credentials
/// and waits until gathering completes (or `p.timeout_ms` passes). Returns the
/// candidates and every icecandidateerror.
export async function gather_only(p) {
  const t0 = performance.now();
  const out = { candidates: [], errors: [], gathering_complete: false, total_ms: null };
  const pc = new RTCPeerConnection({
    iceServers: [{ urls: p.url, username: p.username, credential: p.credential }],
    iceTransportPolicy: 'relay',
  });
  try {
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate) {
        out.candidates.push({
          type: e.candidate.type, protocol: e.candidate.protocol, relay_protocol: e.candidate.relayProtocol,
          address: e.candidate.address, port: e.candidate.port,
        });
      }
    });
    pc.addEventListener('icecandidateerror', (e) => out.errors.push({ code: e.errorCode, text: e.errorText, url: e.url }));
    const complete = new Promise((resolve) => pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve(true);
    }));
    pc.createDataChannel('anyturn');
    await pc.setLocalDescription(await pc.createOffer());
    out.gathering_complete = await Promise.race([complete, new Promise((resolve) => setTimeout(() => resolve(false), p.timeout_ms))]);
  } catch (e) {
    out.failure = String(e && e.message ? e.message : e);
  } finally {
    pc.close();
    out.total_ms = Math.round(performance.now() - t0);
  }
  return out;
}
