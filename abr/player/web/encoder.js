// The observation encoder of abr's RL policies, re-implemented from the export's encoder_spec.json.
//
// An outcome is what the player learned from one downloaded chunk:
//   {chunk_idx, bitrate_bps, buffer_s, throughput_bps, download_time_s}
// where buffer_s is the buffer level after the download and any idle time (the level at the next
// request), throughput_bps = size_bits / download_time_s and download_time_s includes the request RTT.
// Values are computed in double precision and rounded to float32 (Math.fround), as the Python encoder
// does (simulator/observation.py), so both produce the same bits.

const KNOWN_ROWS = ["bitrate", "buffer", "throughput", "download_time", "next_chunk_sizes", "chunks_remaining"];
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
  }
  return spec;
}

function scaleOf(row, video) {
  if (typeof row.scale === "number") return row.scale;
  if (row.scale === "top_bitrate_bps") return video.bitrates_bps[video.bitrates_bps.length - 1];
  if (row.scale === "n_chunks") return video.n_chunks;
  throw new Error(`encoder spec: row '${row.name}' has an unknown scale '${row.scale}'`);
}

/**
 * The observation as an array of rows (each a plain array of float32-rounded numbers).
 * @param spec the encoder spec
 * @param video {bitrates_bps: [...], n_chunks, sizes_bits: [[...per level] per chunk]}
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
    const target = obs[row.row];
    if (row.name === "next_chunk_sizes") {
      if (nextIdx < video.n_chunks) {
        const sizes = video.sizes_bits[nextIdx];
        for (let k = 0; k < sizes.length; k++) target[k] = Math.fround(sizes[k] / scale);
      }
    } else if (row.name === "chunks_remaining") {
      past.forEach((o, j) => { target[first + j] = Math.fround((video.n_chunks - o.chunk_idx - 1) / scale); });
    } else {
      const get = SOURCE[row.name];
      past.forEach((o, j) => { target[first + j] = Math.fround(get(o) / scale); });
    }
  }
  return obs;
}
