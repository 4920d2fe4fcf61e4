// Stands in for string-width in the bundle: the real module builds an ICU segmenter and Unicode
// regexes when it is imported (~15 ms per process), yet the help text it measures is plain ASCII.
// The real module is evaluated on the first string that needs it (esbuild turns this require()
// of a bundled ES module into a deferred initialisation).

let real;
export default function stringWidth(text, options) {
  if (typeof text === 'string' && /^[\x20-\x7e]*$/.test(text)) return text.length;
  real ??= require('string-width').default;
  return real(text, options);
}
