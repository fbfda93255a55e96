// Heuristic bitrate rules in plain JS, the same arithmetic as abr's Python agents (agents/bba.py,
// agents/mpc.py), so a browser session decides exactly as the simulator's agent would on the same history.
//
// A context is {video, outcomes, buffer_s}: video = {bitrates_bps, chunk_duration_s, n_chunks, sizes_bits},
// outcomes as in encoder.js (plus quality_idx), buffer_s the buffer level now, in seconds.

/** BBA (Huang et al. 2014) in the form of Pensieve's baseline: reservoir 5 s, cushion 10 s. */
export function bba({ reservoir_s = 5.0, cushion_s = 10.0 } = {}) {
  return {
    name: "bba",
    reset() {},
    select(ctx) {
      const top = ctx.video.bitrates_bps.length - 1;
      const b = ctx.buffer_s;
      if (b < reservoir_s) return 0;
      if (b >= reservoir_s + cushion_s) return top;
      return Math.trunc((top * (b - reservoir_s)) / cushion_s);
    },
  };
}

function harmonicMean(values) {
  let s = 0;
  for (const v of values) s += 1.0 / v;
  return values.length / s;
}

function sequences(nLevels, horizon) {
  // Every quality sequence, in lexicographic order (the last position varies fastest), as itertools.product.
  const total = nLevels ** horizon;
  const out = new Int32Array(total * horizon);
  for (let i = 0; i < total; i++) {
    let r = i;
    for (let k = horizon - 1; k >= 0; k--) { out[i * horizon + k] = r % nLevels; r = Math.floor(r / nLevels); }
  }
  return out;
}

/** RobustMPC (Yin et al. 2015): harmonic mean of the last 5 throughputs / (1 + max recent error), horizon 5. */
export function robustMpc({ horizon = 5, window = 5, robust = true, rebufferPenalty = 4.3, smoothness = 1.0 } = {}) {
  let errors = [];
  let lastMean = null;
  const cache = new Map();
  const seqs = (n, h) => {
    const key = `${n}:${h}`;
    if (!cache.has(key)) cache.set(key, sequences(n, h));
    return cache.get(key);
  };
  return {
    name: robust ? "robustmpc" : "fastmpc",
    reset() { errors = []; lastMean = null; },
    select(ctx) {
      const history = ctx.outcomes.slice(-window).map((o) => o.throughput_bps);
      if (history.length === 0) return 0;
      const measured = history[history.length - 1];
      errors.push(lastMean === null ? 0.0 : Math.abs(lastMean - measured) / measured);
      const mean = harmonicMean(history);
      lastMean = mean;
      const prediction = robust ? mean / (1.0 + Math.max(...errors.slice(-window))) : mean;
      const v = ctx.video;
      const next = ctx.outcomes.length;
      const h = Math.min(horizon, v.n_chunks - next);
      if (h <= 0) return 0;
      const lastIdx = ctx.outcomes[ctx.outcomes.length - 1].quality_idx;
      const n = v.bitrates_bps.length;
      const combos = seqs(n, h);
      let best = -1;
      let bestReward = -Infinity;
      for (let c = 0; c < combos.length / h; c++) {
        let buffer = ctx.buffer_s;
        let rebuffer = 0.0;
        let bitrateSum = 0.0;
        let smooth = 0.0;
        let previous = v.bitrates_bps[lastIdx];
        for (let k = 0; k < h; k++) {
          const level = combos[c * h + k];
          const download = v.sizes_bits[next + k][level] / prediction;
          rebuffer += Math.max(download - buffer, 0.0);
          buffer = Math.max(buffer - download, 0.0) + v.chunk_duration_s;
          const rate = v.bitrates_bps[level];
          bitrateSum += rate;
          smooth += Math.abs(rate - previous);
          previous = rate;
        }
        const reward = bitrateSum / 1e6 - rebufferPenalty * rebuffer - (smoothness * smooth) / 1e6;
        if (reward >= bestReward) { bestReward = reward; best = c; } // ties: the last enumerated
      }
      return combos[best * h];
    },
  };
}

export const HEURISTICS = { bba, robustmpc: robustMpc, fastmpc: (o = {}) => robustMpc({ ...o, robust: false }) };
