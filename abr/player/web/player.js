// The player page: dash.js 5 with abr's rule (plugin.js) as the only quality rule, buffer targets pinned to
// the simulator's, playback at the session's speed; at the end the log goes to the server (/session/log).
import { createSession, makePolicy } from "./plugin.js";

const status = document.getElementById("status");
const video = document.getElementById("video");
const nowMs = () => performance.timeOrigin + performance.now();
window.__abr = window.__abr || { done: false, error: null };

async function getJson(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r.json();
}

function settings(cfg, initialKbps) {
  const off = { active: false };
  return {
    debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
    streaming: {
      fragmentRequestTimeout: 0, // never abort a slow segment: the rule alone decides
      buffer: {
        bufferTimeDefault: cfg.buffer_target_s, bufferTimeAtTopQuality: cfg.buffer_target_s,
        bufferTimeAtTopQualityLongForm: cfg.buffer_target_s, fastSwitchEnabled: false,
        initialBufferLevel: NaN,
      },
      abr: {
        autoSwitchBitrate: { video: true, audio: true },
        initialBitrate: { video: initialKbps, audio: -1 },
        limitBitrateByPortal: false,
        rules: {
          throughputRule: off, bolaRule: off, insufficientBufferRule: off, switchHistoryRule: off,
          droppedFramesRule: off, abandonRequestsRule: off, l2ARule: off, loLPRule: off,
        },
      },
    },
  };
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(s);
  });
}

async function main() {
  const cfg = await getJson("/session/config");
  const videoModel = cfg.video;
  let weights = null;
  let encoderSpec = null;
  if (cfg.agent.kind === "rl") {
    [weights, encoderSpec] = await Promise.all([getJson(cfg.agent.weights), getJson(cfg.agent.encoder_spec)]);
  }
  let ortSession = null;
  if (cfg.agent.backend === "onnx") {
    await loadScript("/lib/ort/ort.wasm.min.js");
    ort.env.wasm.wasmPaths = "/lib/ort/";
    ort.env.wasm.numThreads = 1;
    ortSession = await ort.InferenceSession.create(cfg.agent.onnx, { executionProviders: ["wasm"] });
  }
  const policy = makePolicy(cfg.agent, { weights, encoderSpec, ortSession, ort: window.ort });
  const player = dashjs.MediaPlayer().create();
  const session = createSession({ dashjs, player, video: videoModel, policy, speed: cfg.speed,
                                  bufferTargetS: cfg.buffer_target_s });
  if (ortSession) await policy.prepare({ video: videoModel, outcomes: [], buffer_s: 0 }); // the first decision
  const events = [];
  const mark = (type, extra = {}) => events.push({ type, t_ms: nowMs(), media_s: video.currentTime, ...extra });
  // The first segment's quality is the rule's decision too (dash.js picks it from initialBitrate).
  const firstQuality = session.decideFirst();
  player.updateSettings(settings(cfg, videoModel.bitrates_bps[firstQuality] / 1000));
  player.addABRCustomRule("qualitySwitchRules", "AbrLabRule", session.rule);
  for (const type of ["waiting", "playing", "stalled", "ended", "error"]) video.addEventListener(type, () => mark(type));
  video.addEventListener("loadedmetadata", () => { video.playbackRate = cfg.speed; });
  video.addEventListener("ratechange", () => { if (video.playbackRate !== cfg.speed) video.playbackRate = cfg.speed; });
  let finished = false;
  const finish = async (reason, error = null) => {
    if (finished) return;
    finished = true;
    mark("finish", { reason });
    player.reset(); // stop dash.js before the benchmark, so that it times the policy alone
    const body = { session_id: cfg.session_id, agent: cfg.agent.name, speed: cfg.speed, reason, error,
                   events, ...session.log(), benchmark: session.benchmark(), user_agent: navigator.userAgent };
    try {
      const r = await fetch("/session/log", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`POST /session/log: HTTP ${r.status} ${await r.text()}`);
      window.__abr.result = await r.json();
    } catch (e) { window.__abr.error = String(e); }
    status.textContent = `${reason}: ${session.log().outcomes.length} segments` + (error ? ` (${error})` : "");
    window.__abr.done = true;
  };
  video.addEventListener("ended", () => finish("ended"));
  player.on(dashjs.MediaPlayer.events.ERROR, (e) => finish("error", JSON.stringify(e.error || e)));
  player.on(dashjs.MediaPlayer.events.PLAYBACK_ENDED, () => finish("ended"));
  setInterval(() => {
    const log = session.log();
    status.textContent = `${cfg.agent.name} · ${log.outcomes.length}/${videoModel.n_chunks} segments · ` +
      `buffer ${player.getDashMetrics().getCurrentBufferLevel("video")?.toFixed(1)} s · ${cfg.speed}x`;
  }, 500);
  player.initialize(video, cfg.manifest, true);
  mark("initialize");
}

main().catch((e) => { window.__abr.error = String(e && e.stack || e); window.__abr.done = true; status.textContent = String(e); });
