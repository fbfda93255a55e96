// The observation encoder of abr's RL policies, re-implemented from the export's encoder_spec.json.
//
// An outcome is what the player learned from one downloaded chunk:
//   {chunk_idx, bitrate_bps, buffer_s, throughput_bps, download_time_s}
// where buffer_s is the buffer level after the download and any idle time (the level at the next
// request), throughput_bps = size_bits / download_time_s and download_time_s includes the request RTT.
// Values are computed in double precision and rounded to float32 (Math.fround), as the Python encoder
// does (simulator/observation.py), so both produce the same bits.
//
// Each row of the spec names its transform (a row without one is a ratio, as in older specs):
//   ratio            quantity / scale                                       (pensieve-6row-v1, most of v2)
//   ratio_clip       min(quantity / scale, row.clip)                        (abr-6row-v2 row 3)
//   log2_ratio_clip  clip((log2(quantity / scale) - low) / (high - low), 0, 1)  (abr-6row-v2 row 2)
// and its scale: a number, or top_bitrate_bps, top_chunk_bits (top bitrate x chunk duration) or n_chunks.

const KNOWN_ROWS = ["bitrate", "buffer", "throughput", "download_time", "next_chunk_sizes", "chunks_remaining"];
const TRANSFORMS = {
  ratio: () => (q, scale) => q / scale,
  ratio_clip: (row) => {
    const clip = needNumber(row, "clip");
    return (q, scale) => Math.min(q / scale, clip);
  },
  log2_ratio_clip: (row) => {
    const low = needNumber(row, "low");
    const high = needNumber(row, "high");
    // Math.log2 and numpy's log2 differ by one float64 ulp on about 0.4% of ratios; the float32 rounding hides
    // it (none of 2e6 random ratios from 1e-4 to 1e3 gave a different float32 value), so parity stays exact.
    return (q, scale) => Math.min(Math.max((Math.log2(q / scale) - low) / (high - low), 0), 1);
  },
};
const SOURCE = {
  bitrate: (o) => o.bitrate_bps,
  buffer: (o) => o.buffer_s,
  throughput: (o) => o.throughput_bps,
  download_time: (o) => o.download_time_s,
};

/** Check an encoder spec (encoder_spec.json) and return it; throws with the field that is wrong. */
export function checkSpec(spec) {
  if (!spec || spec.encoder === undefined || !Array.isArray(spec.rows) || !Array.isArray(spec.shape)) {
    throw new Error("encoder spec: expected an object with 'encoder', 'shape' and 'rows' (encoder_spec.json)");
  }
  for (const row of spec.rows) {
    if (!KNOWN_ROWS.includes(row.name)) {
      throw new Error(`encoder spec: unknown row name '${row.name}' (known: ${KNOWN_ROWS.join(", ")})`);
    }
    transformOf(row);
  }
  return spec;
}

function needNumber(row, key) {
  if (typeof row[key] !== "number") {
    throw new Error(`encoder spec: row ${row.row} '${row.name}' (${row.transform}) needs a number '${key}', got ${row[key]}`);
  }
  return row[key];
}

/** The row's transform as a function (quantity, scale) -> value in double precision. */
function transformOf(row) {
  const name = row.transform ?? "ratio";
  if (!Object.hasOwn(TRANSFORMS, name)) {
    throw new Error(`encoder spec: row ${row.row} '${row.name}' has an unknown transform '${name}' ` +
      `(known: ${Object.keys(TRANSFORMS).join(", ")}); the spec may come from a newer version of abr`);
  }
  return TRANSFORMS[name](row);
}

function scaleOf(row, video) {
  if (typeof row.scale === "number") return row.scale;
  if (row.scale === "top_bitrate_bps") return video.bitrates_bps[video.bitrates_bps.length - 1];
  if (row.scale === "top_chunk_bits") {
    if (typeof video.chunk_duration_s !== "number") {
      throw new Error(`encoder spec: row '${row.name}' scales by top_chunk_bits, but the video has no chunk_duration_s`);
    }
    return video.bitrates_bps[video.bitrates_bps.length - 1] * video.chunk_duration_s;
  }
  if (row.scale === "n_chunks") return video.n_chunks;
  throw new Error(`encoder spec: row '${row.name}' has an unknown scale '${row.scale}'`);
}

/**
 * The observation as an array of rows (each a plain array of float32-rounded numbers).
 * @param spec the encoder spec
 * @param video {bitrates_bps: [...], chunk_duration_s, n_chunks, sizes_bits: [[...per level] per chunk]}
 * @param outcomes the outcomes of the chunks downloaded so far, oldest first
 */
export function encodeObservation(spec, video, outcomes) {
  const [nRows, nCols] = spec.shape;
  const h = spec.history_len;
  const obs = Array.from({ length: nRows }, () => new Array(nCols).fill(0));
  const past = outcomes.slice(-h);
  const first = h - past.length;
  const nextIdx = outcomes.length;
  for (const row of spec.rows) {
    const scale = scaleOf(row, video);
    const f = transformOf(row);
    const target = obs[row.row];
    if (row.name === "next_chunk_sizes") {
      if (nextIdx < video.n_chunks) {
        const sizes = video.sizes_bits[nextIdx];
        for (let k = 0; k < sizes.length; k++) target[k] = Math.fround(f(sizes[k], scale));
      }
    } else if (row.name === "chunks_remaining") {
      past.forEach((o, j) => { target[first + j] = Math.fround(f(video.n_chunks - o.chunk_idx - 1, scale)); });
    } else {
      const get = SOURCE[row.name];
      past.forEach((o, j) => { target[first + j] = Math.fround(f(get(o), scale)); });
    }
  }
  return obs;
}
