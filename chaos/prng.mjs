// A small seeded PRNG (mulberry32): every run is reproducible from its seed.
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}

/** Derives a child seed from a seed and labels, so each process has its own reproducible stream. */
export function derive(seed, ...labels) {
  let h = seed >>> 0;
  for (const label of labels.join('/')) h = Math.imul(h ^ label.charCodeAt(0), 2654435761) >>> 0;
  return h;
}
