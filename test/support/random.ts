// A small seeded generator (mulberry32), so a failing random sequence can be replayed from its seed.

export function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(items: readonly T[]) => items[int(items.length)]! };
}

const valid = '[election]\nleader = true\nfollower = false\nfinished = true\n\n[label]\nkey = "role"\nleader = "leader"\nfollower = "follower"\n\n[group]\nselector = "app=redis"\n';
const alphabet = ['[', ']', '=', '"', "'", '\n', ' ', '#', '.', ',', '{', '}', 'true', 'false', '1', '-', 'x', '\\', '\u00e9', '\u0000', 'leader', 'election', '"""'];

/** A random mutation of a valid election file: flips, deletions, insertions, truncation, duplicated lines. */
export function mutateElectionFile(rng: ReturnType<typeof seeded>): string {
  let text = valid;
  for (let edits = 1 + rng.int(4); edits > 0; edits--) {
    const at = rng.int(text.length + 1);
    switch (rng.int(5)) {
      case 0: text = text.slice(0, at) + text.slice(at + 1 + rng.int(6)); break;
      case 1: text = text.slice(0, at) + rng.pick(alphabet) + text.slice(at); break;
      case 2: text = text.slice(0, at); break;
      case 3: {
        const lines = text.split('\n');
        const i = rng.int(lines.length);
        lines.splice(i, 0, lines[i]!);
        text = lines.join('\n');
        break;
      }
      default: text = text.slice(0, at) + String.fromCharCode(rng.int(128)) + text.slice(at + 1);
    }
  }
  return text;
}
