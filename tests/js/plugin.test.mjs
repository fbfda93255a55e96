// Node tests of the plug-in's JS against the vectors Python wrote (tests/abr/player/test_plugin_js.py runs
// this with ABR_VECTORS pointing at them): the encoder, the policy network and the heuristic rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeObservation, checkSpec } from "../../abr/player/web/encoder.js";
import { loadPolicy } from "../../abr/player/web/policy.js";
import { HEURISTICS } from "../../abr/player/web/rules.js";

const dir = process.env.ABR_VECTORS;
if (!dir) throw new Error("set ABR_VECTORS to a folder written by abr.player.vectors.write_vectors");
const load = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));
const report = {};
process.on("exit", () => { if (process.env.ABR_REPORT) writeFileSync(process.env.ABR_REPORT, JSON.stringify(report)); });

test("the encoder reproduces every observation of the exported sessions exactly", () => {
  const spec = checkSpec(load("encoder_spec.json"));
  const vectors = load("encoder_vectors.json");
  let cells = 0;
  let worst = 0;
  for (const session of vectors.sessions) {
    for (let k = 0; k < session.observations.length; k++) {
      const obs = encodeObservation(spec, vectors.video, session.outcomes.slice(0, k));
      const want = session.observations[k];
      assert.deepEqual([obs.length, obs[0].length], [want.length, want[0].length]);
      for (let r = 0; r < want.length; r++) {
        for (let c = 0; c < want[r].length; c++) { worst = Math.max(worst, Math.abs(obs[r][c] - want[r][c])); cells++; }
      }
    }
  }
  report.encoder = { cells, max_abs_diff: worst, encoder: spec.encoder };
  assert.ok(cells > 500, `only ${cells} cells checked`);
  assert.equal(worst, 0, `encoder differs by ${worst}`);
});

test("the JSON-weights network gives the SB3 policy's probabilities and greedy actions", () => {
  const vectors = load("test_vectors.json");
  const net = loadPolicy(load("weights.json"));
  let worst = 0;
  let actions = 0;
  vectors.observations.forEach((obs, i) => {
    const probs = net.probs(obs);
    probs.forEach((p, j) => { worst = Math.max(worst, Math.abs(p - vectors.probs[i][j])); });
    if (net.act(obs) === vectors.greedy_actions[i]) actions++;
  });
  report.network = { vectors: vectors.observations.length, max_abs_diff_prob: worst, same_actions: actions };
  assert.ok(worst <= vectors.tolerance, `max |dprob| ${worst} > ${vectors.tolerance}`);
  assert.equal(actions, vectors.observations.length);
});

test("encoder + network replay the policy's own sessions decision for decision", () => {
  const spec = load("encoder_spec.json");
  const vectors = load("encoder_vectors.json");
  const net = loadPolicy(load("weights.json"));
  let n = 0;
  for (const session of vectors.sessions) {
    session.outcomes.forEach((o, k) => {
      assert.equal(net.act(encodeObservation(spec, vectors.video, session.outcomes.slice(0, k))), o.quality_idx,
        `${session.trace} chunk ${k}`);
      n++;
    });
  }
  report.rl_replay = { decisions: n };
});

test("BBA, RobustMPC and FastMPC in JS decide as the Python agents on every chunk", () => {
  const vectors = load("rule_vectors.json");
  const counts = {};
  for (const session of vectors.sessions) {
    const rule = HEURISTICS[session.agent]();
    rule.reset();
    session.outcomes.forEach((o, k) => {
      const outcomes = session.outcomes.slice(0, k);
      const buffer = k === 0 ? 0 : session.outcomes[k - 1].buffer_s;
      const got = rule.select({ video: vectors.video, outcomes, buffer_s: buffer });
      assert.equal(got, o.quality_idx, `${session.agent} on ${session.trace}, chunk ${k}`);
    });
    counts[session.agent] = (counts[session.agent] || 0) + session.outcomes.length;
  }
  report.rules = counts;
  assert.deepEqual(Object.keys(counts).sort(), ["bba", "fastmpc", "robustmpc"]);
});

test("a malformed weights file or encoder spec is refused with the field named", () => {
  assert.throws(() => loadPolicy({ format: "other" }), /format/);
  const w = load("weights.json");
  w.action_head.weight.data = w.action_head.weight.data.slice(1);
  assert.throws(() => loadPolicy(w), /action_head\.weight/);
  assert.throws(() => checkSpec({ encoder: "x", shape: [6, 8], rows: [{ name: "bogus" }] }), /bogus/);
  assert.throws(() => checkSpec({ encoder: "x", shape: [6, 8], rows: [{ row: 2, name: "throughput", transform: "cube" }] }),
    /row 2 'throughput' has an unknown transform 'cube'/);
  assert.throws(() => checkSpec({ encoder: "x", shape: [6, 8], rows: [{ row: 3, name: "download_time", transform: "ratio_clip" }] }),
    /row 3 'download_time' \(ratio_clip\) needs a number 'clip'/);
});

test("the spec's clipped rows (abr-6row-v2) read their bounds past them", (t) => {
  const spec = checkSpec(load("encoder_spec.json"));
  const clipped = spec.rows.filter((r) => (r.transform ?? "ratio") !== "ratio");
  if (clipped.length === 0) { t.skip(`${spec.encoder} clips no row`); return; }
  const video = load("encoder_vectors.json").video;
  const top = video.bitrates_bps[video.bitrates_bps.length - 1];
  const outcome = (throughput, download) => ({ chunk_idx: 0, bitrate_bps: top, buffer_s: 4, throughput_bps: throughput,
    download_time_s: download });
  const h = spec.history_len;
  const high = encodeObservation(spec, video, [outcome(top * 1e3, 1e3)]);
  const low = encodeObservation(spec, video, [outcome(top / 1e3, 0.5)]);
  const zero = encodeObservation(spec, video, [outcome(0, 0.5)]);
  const exact = encodeObservation(spec, video, [outcome(top, 0.5)]);
  for (const row of clipped) {
    if (row.transform === "log2_ratio_clip") {
      assert.deepEqual([high[row.row][h - 1], low[row.row][h - 1], zero[row.row][h - 1]], [1, 0, 0]);
      assert.equal(exact[row.row][h - 1], Math.fround(-row.low / (row.high - row.low)));
    } else {
      assert.equal(high[row.row][h - 1], row.clip);
    }
  }
  report.clipped_rows = clipped.map((r) => r.row);
});
