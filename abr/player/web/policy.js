// A trained actor evaluated from the export's weights.json (format abr-policy-weights-v1), in plain JS.
// The format and the reference evaluation are documented in abr/_policy_weights.py; weights are read as
// float32 (Math.fround) and the arithmetic is double precision, as the numpy reference does.

const FORMAT = "abr-policy-weights-v1";

function tensor(t, name) {
  if (!t || !Array.isArray(t.shape) || !Array.isArray(t.data)) {
    throw new Error(`weights: '${name}' is not a tensor {shape, data}`);
  }
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) throw new Error(`weights: '${name}' has ${t.data.length} values for shape ${t.shape}`);
  // Float32Array holds exactly the float32 weights (each value is promoted to double when read), at half the
  // memory traffic of doubles: the dense layer after the Pensieve extractor is 2048 x 128.
  return { shape: t.shape, data: Float32Array.from(t.data) };
}

function linear(layer, name) {
  const w = tensor(layer.weight, `${name}.weight`);
  const b = tensor(layer.bias, `${name}.bias`);
  const [out, inp] = w.shape;
  return (x) => {
    if (x.length !== inp) throw new Error(`weights: ${name} expects ${inp} inputs, got ${x.length}`);
    const y = new Float64Array(out);
    const wd = w.data;
    let i = 0;
    // Four outputs at a time share each load of x[j]; each output still sums over j in order, so the
    // result is the same, bit for bit, as the plain loop.
    for (; i + 4 <= out; i += 4) {
      let s0 = b.data[i], s1 = b.data[i + 1], s2 = b.data[i + 2], s3 = b.data[i + 3];
      const r0 = i * inp, r1 = r0 + inp, r2 = r1 + inp, r3 = r2 + inp;
      for (let j = 0; j < inp; j++) {
        const xj = x[j];
        s0 += wd[r0 + j] * xj; s1 += wd[r1 + j] * xj; s2 += wd[r2 + j] * xj; s3 += wd[r3 + j] * xj;
      }
      y[i] = s0; y[i + 1] = s1; y[i + 2] = s2; y[i + 3] = s3;
    }
    for (; i < out; i++) {
      let s = b.data[i];
      const row = i * inp;
      for (let j = 0; j < inp; j++) s += wd[row + j] * x[j];
      y[i] = s;
    }
    return y;
  };
}

const ACTIVATIONS = {
  relu: (x) => x.map((v) => (v > 0 ? v : 0)),
  tanh: (x) => x.map(Math.tanh),
};

function conv(entry, name) {
  const w = tensor(entry.weight, `${name}.weight`); // [F, 1, k]
  const b = tensor(entry.bias, `${name}.bias`);
  const [filters, , k] = w.shape;
  return (seq) => {
    const positions = seq.length - k + 1;
    const out = new Float64Array(filters * positions);
    for (let f = 0; f < filters; f++) {
      for (let p = 0; p < positions; p++) {
        let s = b.data[f];
        for (let j = 0; j < k; j++) s += w.data[f * k + j] * seq[p + j];
        out[f * positions + p] = s > 0 ? s : 0;
      }
    }
    return out;
  };
}

function pensieveExtractor(spec) {
  const h = spec.history_len;
  const n = spec.n_levels;
  const parts = {};
  for (const e of spec.scalar) {
    const w = tensor(e.weight, `scalar:${e.row}.weight`);
    const b = tensor(e.bias, `scalar:${e.row}.bias`);
    parts[`scalar:${e.row}`] = (obs) => {
      const x = obs[e.row][h - 1];
      return b.data.map((bias, i) => { const s = x * w.data[i] + bias; return s > 0 ? s : 0; });
    };
  }
  for (const e of spec.history_conv) {
    const c = conv(e, `history_conv:${e.row}`);
    parts[`history_conv:${e.row}`] = (obs) => c(obs[e.row].slice(0, h));
  }
  const sc = spec.size_conv;
  const sizeConv = conv(sc, `size_conv:${sc.row}`);
  parts[`size_conv:${sc.row}`] = (obs) => sizeConv(obs[sc.row].slice(0, n));
  for (const name of spec.concat) if (!parts[name]) throw new Error(`weights: unknown extractor part '${name}'`);
  return (obs) => {
    const pieces = spec.concat.map((name) => parts[name](obs));
    const total = pieces.reduce((a, p) => a + p.length, 0);
    const x = new Float64Array(total);
    let at = 0;
    for (const p of pieces) { x.set(p, at); at += p.length; }
    return x;
  };
}

/** Build the policy network from parsed weights.json; returns {logits(obs), probs(obs), act(obs), nLevels}. */
export function loadPolicy(weights) {
  if (!weights || weights.format !== FORMAT) {
    throw new Error(`weights: format is '${weights && weights.format}', expected '${FORMAT}' (weights.json of abr export)`);
  }
  const ex = weights.extractor;
  let features;
  if (ex.type === "flatten") features = (obs) => Float64Array.from(obs.flat());
  else if (ex.type === "pensieve") features = pensieveExtractor(ex);
  else throw new Error(`weights: unknown extractor type '${ex.type}'`);
  const layers = weights.actor.map((layer, i) => {
    if (layer.type === "linear") return linear(layer, `actor[${i}]`);
    if (ACTIVATIONS[layer.type]) return ACTIVATIONS[layer.type];
    throw new Error(`weights: unknown layer type '${layer.type}' at actor[${i}]`);
  });
  layers.push(linear(weights.action_head, "action_head"));
  const logits = (obs) => layers.reduce((x, f) => f(x), features(obs));
  const probs = (obs) => softmax(logits(obs));
  const act = (obs) => argmax(probs(obs));
  return { logits, probs, act, nLevels: weights.n_levels };
}

export function softmax(z) {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v);
  const e = Array.from(z, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Index of the largest value (the first on ties, as numpy.argmax). */
export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
