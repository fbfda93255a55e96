// abr's dash.js 5 ABR rule: every video segment's quality is chosen by one of abr's policies (an exported
// RL policy from its JSON weights, or BBA / RobustMPC), synchronously inside getSwitchRequest, and every
// decision and download is logged.
//
//   import { createSession } from "./plugin.js";
//   const session = createSession({ dashjs, player, video, policy, speed });
//   player.addABRCustomRule("qualitySwitchRules", "AbrLabRule", session.rule);   // before initialize()
//
// Time: dash.js measures wall-clock milliseconds. With playback at `speed` x (and the server's trace
// scaled to match), one wall second is `speed` seconds of session time; the log converts every duration
// to session seconds so it reads like the simulator's chunk records.

import { encodeObservation, checkSpec } from "./encoder.js";
import { argmax, loadPolicy } from "./policy.js";
import { HEURISTICS } from "./rules.js";

const SEGMENT_RE = /chunk-(\d+)-(\d+)\.m4s/;

/**
 * A policy object {name, reset(), select(ctx)} for an agent description from the server's config.
 *
 * RL policies run on the JSON weights in plain JS (backend "json", the default: exact and synchronous).
 * With backend "onnx" (pass `ortSession`, an onnxruntime-web InferenceSession of the export's policy.onnx)
 * ONNX Runtime Web decides. It answers asynchronously, and dash.js needs the answer synchronously, so the
 * next decision is computed ahead: `prepare(ctx)` runs as soon as a segment has arrived, on the observation
 * with that segment's buffer estimated as min(buffer now + one segment, buffer target); `select` then returns
 * the prepared action (or, if it is not ready, the JSON network's). The log tells what decided, how far the
 * estimated observation was from the real one, and how far ONNX's probabilities are from the JSON network's
 * (`diagnose()`, which the session calls after timing the decision, adds these to the decision log).
 */
export function makePolicy(agent, { weights = null, encoderSpec = null, ortSession = null, ort = null } = {}) {
  if (agent.kind === "rl") {
    if (!weights || !encoderSpec) throw new Error(`agent ${agent.name}: an RL policy needs weights.json and encoder_spec.json`);
    const spec = checkSpec(encoderSpec);
    const net = loadPolicy(weights);
    // Compile the network's hot loops before the session: the first calls of a cold JS function are slower.
    const zeros = Array.from({ length: spec.shape[0] }, () => new Array(spec.shape[1]).fill(0));
    for (let i = 0; i < 30; i++) net.act(zeros);
    if (agent.backend !== "onnx") {
      return {
        name: agent.name,
        backend: "json",
        reset() {},
        select(ctx) { return net.act(encodeObservation(spec, ctx.video, ctx.outcomes)); },
      };
    }
    if (!ortSession || !ort) throw new Error(`agent ${agent.name}: the onnx backend needs an ONNX Runtime Web session`);
    let prepared = null;
    return {
      name: agent.name,
      backend: "onnx",
      diagnose: null,
      reset() { prepared = null; },
      async prepare(ctx) {
        const obs = encodeObservation(spec, ctx.video, ctx.outcomes);
        const t0 = performance.now();
        const input = new ort.Tensor("float32", Float32Array.from(obs.flat()), [1, obs.length, obs[0].length]);
        const out = await ortSession.run({ obs: input });
        const probs = Array.from(out.probs.data);
        prepared = { idx: ctx.outcomes.length, obs, probs, ms: performance.now() - t0 };
      },
      select(ctx) {
        const obs = encodeObservation(spec, ctx.video, ctx.outcomes);
        if (!prepared || prepared.idx !== ctx.outcomes.length) {
          this.diagnose = () => ({ backend: "json-fallback" });
          return net.act(obs);
        }
        const action = argmax(prepared.probs);
        const used = prepared;
        // Checked after the decision is timed (decide() calls diagnose()): the JSON network on the same
        // observation, and the exact observation's action.
        this.diagnose = () => {
          const jsonProbs = net.probs(used.obs);
          let dp = 0;
          used.probs.forEach((p, i) => { dp = Math.max(dp, Math.abs(p - jsonProbs[i])); });
          let dobs = 0;
          obs.forEach((row, r) => row.forEach((v, c) => { dobs = Math.max(dobs, Math.abs(v - used.obs[r][c])); }));
          return { backend: "onnx", onnx_ms: used.ms, onnx_json_max_dprob: dp, obs_estimate_max_abs_err: dobs,
                   same_as_exact: action === net.act(obs) };
        };
        return action;
      },
    };
  }
  const make = HEURISTICS[agent.kind];
  if (!make) throw new Error(`agent ${agent.name}: no browser rule for kind '${agent.kind}' (have: rl, ${Object.keys(HEURISTICS).join(", ")})`);
  return make(agent.params || {});
}

/** Wall-clock milliseconds since the epoch, with sub-millisecond resolution. */
function nowMs() { return performance.timeOrigin + performance.now(); }

/**
 * The session: the dash.js rule, the event listeners that build the outcome history, and the log.
 * @param opts.video {bitrates_bps, chunk_duration_s, n_chunks, sizes_bits}
 * @param opts.policy a policy from makePolicy
 * @param opts.speed playback speed (session seconds per wall second)
 */
export function createSession({ dashjs, player, video, policy, speed = 1, bufferTargetS = 60 }) {
  const outcomes = [];       // one per downloaded video segment, in order
  const decisions = [];      // one per segment index the rule decided
  const segments = [];       // every video media segment download dash.js completed
  const anomalies = [];      // anything that breaks the one-decision-per-segment contract
  const decided = new Map(); // segment index -> quality
  const contexts = [];       // the context of every decision (for the benchmark at the end)
  policy.reset();

  function bufferLevel() {
    let level = 0;
    try { level = player.getDashMetrics().getCurrentBufferLevel("video"); } catch (e) { level = 0; } // before initialize()
    return Number.isFinite(level) ? level : 0;
  }

  function decide(nextIdx) {
    if (decided.has(nextIdx)) return decided.get(nextIdx);
    const buffer = bufferLevel();
    // The buffer level at this request is the previous chunk's "buffer after download and idle time".
    if (outcomes.length > 0 && outcomes[outcomes.length - 1].buffer_s === null) outcomes[outcomes.length - 1].buffer_s = buffer;
    const ctx = { video, outcomes: outcomes.map((o) => ({ ...o, buffer_s: o.buffer_s ?? buffer })), buffer_s: buffer };
    contexts.push(ctx);
    const t0 = performance.now();
    let quality = policy.select(ctx);
    const decideMs = performance.now() - t0;
    quality = Math.max(0, Math.min(video.bitrates_bps.length - 1, quality | 0));
    decided.set(nextIdx, quality);
    decisions.push({ chunk: nextIdx, quality, buffer_s: buffer, t_ms: nowMs(), decide_ms: decideMs, policy: policy.name,
                     ...(typeof policy.diagnose === "function" ? policy.diagnose() : {}) });
    return quality;
  }

  /** Let an asynchronous policy (the onnx backend) compute the next decision ahead (see makePolicy). */
  function prepareNext(bufferTargetS) {
    if (typeof policy.prepare !== "function" || outcomes.length >= video.n_chunks) return;
    const estimate = Math.min(bufferLevel() + video.chunk_duration_s, bufferTargetS);
    const ctx = { video, outcomes: outcomes.map((o) => ({ ...o, buffer_s: o.buffer_s ?? estimate })), buffer_s: estimate };
    policy.prepare(ctx).catch((e) => anomalies.push({ kind: "prepare", message: String(e) }));
  }

  function AbrLabRule() {
    const context = this.context;
    const SwitchRequest = dashjs.FactoryMaker.getClassFactoryByName("SwitchRequest");
    function getSwitchRequest(rulesContext) {
      const request = SwitchRequest(context).create();
      if (!rulesContext || rulesContext.getMediaType() !== "video") return request; // audio: no opinion
      const mediaInfo = rulesContext.getMediaInfo();
      const reps = rulesContext.getAbrController().getPossibleVoRepresentationsFilteredBySettings(mediaInfo, true)
        .slice().sort((a, b) => a.bandwidth - b.bandwidth);
      if (reps.length !== video.bitrates_bps.length) {
        anomalies.push({ kind: "ladder", message: `dash.js offers ${reps.length} representations, the video has ${video.bitrates_bps.length}` });
      }
      const quality = decide(outcomes.length);
      request.representation = reps[Math.min(quality, reps.length - 1)];
      request.priority = SwitchRequest.PRIORITY.STRONG;
      request.reason = { rule: "AbrLabRule", policy: policy.name, chunk: outcomes.length, quality };
      return request;
    }
    return { getSwitchRequest, reset() {} };
  }
  AbrLabRule.__dashjs_factory_name = "AbrLabRule";
  const rule = dashjs.FactoryMaker.getClassFactory(AbrLabRule);

  player.on(dashjs.MediaPlayer.events.FRAGMENT_LOADING_COMPLETED, (e) => {
    const r = e.request;
    if (!r || r.mediaType !== "video" || r.type !== "MediaSegment") return;
    const m = SEGMENT_RE.exec(r.url || "");
    if (!m) { anomalies.push({ kind: "url", message: `unexpected segment URL ${r.url}` }); return; }
    const quality = Number(m[1]);
    const chunk = Number(m[2]) - 1;
    const start = r.startDate ? r.startDate.getTime() : NaN;
    const end = r.endDate ? r.endDate.getTime() : NaN;
    const firstByte = r.firstByteDate ? r.firstByteDate.getTime() : NaN;
    const bytes = r.bytesLoaded;
    segments.push({ chunk, quality, bytes, request_ms: start, first_byte_ms: firstByte, end_ms: end, decided: decided.get(chunk) ?? null });
    if (chunk !== outcomes.length) { anomalies.push({ kind: "order", message: `segment ${chunk} arrived when ${outcomes.length} was expected` }); return; }
    const downloadS = Math.max((end - start) / 1000, 1e-3) * speed;
    outcomes.push({
      chunk_idx: chunk, quality_idx: quality, bitrate_bps: video.bitrates_bps[quality], size_bits: bytes * 8,
      download_time_s: downloadS, throughput_bps: (bytes * 8) / downloadS, buffer_s: null,
    });
    prepareNext(bufferTargetS);
  });

  return {
    rule,
    /** The decision for the first segment (empty history, empty buffer), before playback starts. */
    decideFirst() { return decide(0); },
    /**
     * Time `rounds` passes of the policy over the session's decision contexts, back to back (after playback:
     * the compute cost of a decision in this browser, without the player's own work in between).
     */
    benchmark(rounds = 5) {
      if (policy.backend === "onnx" || contexts.length === 0) return null;
      const times = [];
      for (let r = 0; r < rounds; r++) {
        if (typeof policy.reset === "function") policy.reset();
        for (const ctx of contexts) {
          const t0 = performance.now();
          policy.select(ctx);
          times.push(performance.now() - t0);
        }
      }
      times.sort((a, b) => a - b);
      const q = (f) => times[Math.min(times.length - 1, Math.floor(f * times.length))];
      return { n: times.length, mean_ms: times.reduce((a, b) => a + b, 0) / times.length, p50_ms: q(0.5),
               p99_ms: q(0.99), max_ms: times[times.length - 1] };
    },
    prepareNext,
    log() { return { decisions, segments, anomalies, outcomes }; },
  };
}
