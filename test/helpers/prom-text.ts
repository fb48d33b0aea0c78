// A strict parser of the Prometheus text exposition format 0.0.4, for the metrics tests.
//
// Why our own: prom-client only writes the format, it has no parser; the one npm parser
// (parse-prometheus-text-format 1.1.1) folds every series of a labelled histogram into one and
// checks little. This one follows the format's rules as Prometheus' own parser (expfmt) does,
// and fails on anything else:
// - `# HELP name text` and `# TYPE name counter|gauge|histogram|summary|untyped`, at most one
//   each per family, TYPE before the family's first sample; other `#` lines are comments;
// - a sample is `name[{label="value",...}] value [timestamp]`: names as Prometheus allows them,
//   label values with only \\, \" and \n escapes, Go float values (NaN, +Inf, -Inf, any case), an integer
//   timestamp; no label twice, no label name starting with "__";
// - a family's lines are one group (no family appears again after another began), no series
//   twice; a histogram's samples are name_bucket (with le), name_sum and name_count, a summary's
//   name (with quantile), name_sum and name_count;
// - counters, histogram buckets and counts are never negative or NaN; each histogram series
//   has buckets in increasing le, cumulative counts, a +Inf bucket equal to its _count.

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** the sample's own name: the family name, or it with _bucket/_sum/_count */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// Go's ParseFloat: decimal or exponent, and Inf, Infinity, NaN in any case (prom-client writes "Nan").
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)$|^nan$/i;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export class ExpositionError extends Error {
  constructor(line: number, text: string, why: string) {
    super(`line ${line}: ${why}: ${JSON.stringify(text.length > 200 ? text.slice(0, 200) + '…' : text)}`);
    this.name = 'ExpositionError';
  }
}

/** Parse `text`; throws ExpositionError naming the first line that breaks a rule. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  const typed = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError(lines.length, lines.at(-1)!, 'the last line does not end with \\n');

  const family = (name: string, n: number, line: string): Family => {
    if (current?.name !== name) {
      if (current) closed.add(current.name);
      if (closed.has(name)) throw new ExpositionError(n, line, `the lines of family ${name} are not one group`);
      let f = families.get(name);
      if (!f) {
        f = { name, type: 'untyped', samples: [] };
        families.set(name, f);
      }
      current = f;
    }
    return current;
  };

  lines.forEach((line, i) => {
    const n = i + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) return; // a comment
      const [, kw, name, rest = ''] = m;
      if (!METRIC_NAME.test(name!)) throw new ExpositionError(n, line, `invalid metric name ${name}`);
      const f = family(name!, n, line);
      if (kw === 'HELP') {
        if (f.help !== undefined) throw new ExpositionError(n, line, `second HELP for ${name}`);
        f.help = unescape(rest, false, n, line);
      } else {
        if (f.samples.length > 0) throw new ExpositionError(n, line, `TYPE of ${name} after its samples`);
        if (typed.has(f.name)) throw new ExpositionError(n, line, `second TYPE for ${name}`);
        if (!TYPES.has(rest.trim() as MetricType)) throw new ExpositionError(n, line, `unknown type ${rest}`);
        f.type = rest.trim() as MetricType;
        typed.add(f.name);
      }
      return;
    }
    const s = parseSample(line, n);
    const fname = familyOf(s.name, current);
    const f = family(fname, n, line);
    checkSampleName(f, s, n, line);
    const key = `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    if (seen.has(key)) throw new ExpositionError(n, line, 'a series appears twice');
    seen.add(key);
    f.samples.push(s);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The family a sample belongs to: the current one when its name is one of that family's sample names. */
function familyOf(name: string, current: Family | undefined): string {
  if (current) {
    const suffix = name.slice(current.name.length);
    if (name === current.name) return current.name;
    if (name.startsWith(current.name)) {
      if (current.type === 'histogram' && ['_bucket', '_sum', '_count'].includes(suffix)) return current.name;
      if (current.type === 'summary' && ['_sum', '_count'].includes(suffix)) return current.name;
    }
  }
  return name;
}

function checkSampleName(f: Family, s: Sample, n: number, line: string): void {
  const suffix = s.name.slice(f.name.length);
  if (f.type === 'histogram') {
    if (suffix === '_bucket') {
      if (s.labels.le === undefined) throw new ExpositionError(n, line, 'a histogram bucket without le');
      if (!FLOAT.test(s.labels.le)) throw new ExpositionError(n, line, `le ${s.labels.le} is not a number`);
    } else if (suffix !== '_sum' && suffix !== '_count') {
      throw new ExpositionError(n, line, `histogram ${f.name} has a sample named ${s.name}`);
    }
    if (suffix !== '_sum' && (s.value < 0 || Number.isNaN(s.value))) throw new ExpositionError(n, line, 'a negative or NaN histogram count');
  } else if (f.type === 'summary') {
    if (suffix === '' && s.labels.quantile === undefined) throw new ExpositionError(n, line, 'a summary sample without quantile');
  } else if (suffix !== '') {
    throw new ExpositionError(n, line, `sample ${s.name} in family ${f.name}`);
  }
  if (f.type === 'counter' && (s.value < 0 || Number.isNaN(s.value))) throw new ExpositionError(n, line, 'a negative or NaN counter');
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let e = series.get(key);
    if (!e) series.set(key, (e = { buckets: [] }));
    if (s.name.endsWith('_bucket')) e.buckets.push([toFloat(le!), s.value]);
    else if (s.name.endsWith('_count')) e.count = s.value;
  }
  for (const [key, e] of series) {
    const where = `histogram ${f.name}${key}`;
    for (let i = 1; i < e.buckets.length; i++) {
      if (!(e.buckets[i]![0] > e.buckets[i - 1]![0])) throw new Error(`${where}: buckets not in increasing le`);
      if (e.buckets[i]![1] < e.buckets[i - 1]![1]) throw new Error(`${where}: bucket counts are not cumulative`);
    }
    const inf = e.buckets.at(-1);
    if (!inf || inf[0] !== Infinity) throw new Error(`${where}: no +Inf bucket`);
    if (e.count === undefined) throw new Error(`${where}: no _count`);
    if (inf[1] !== e.count) throw new Error(`${where}: the +Inf bucket (${inf[1]}) is not the _count (${e.count})`);
  }
}

function parseSample(line: string, n: number): Sample {
  let i = 0;
  const fail = (why: string): never => {
    throw new ExpositionError(n, line, why);
  };
  const nameEnd = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameEnd) fail('no metric name');
  const name = nameEnd![0];
  i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      if (line[i] === '}') {
        i++;
        break;
      }
      const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!ln) fail('invalid label name');
      const lname = ln![0];
      if (!LABEL_NAME.test(lname) || lname.startsWith('__')) fail(`reserved or invalid label name ${lname}`);
      if (lname in labels) fail(`label ${lname} twice`);
      i += lname.length;
      if (line[i] !== '=' || line[i + 1] !== '"') fail(`label ${lname} is not followed by ="`);
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) fail('unterminated label value');
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i + 1];
          if (e === '\\') value += '\\';
          else if (e === '"') value += '"';
          else if (e === 'n') value += '\n';
          else fail(`invalid escape \\${e ?? ''} in a label value`);
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      labels[lname] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') fail('labels not separated by ,');
    }
  }
  const rest = line.slice(i);
  const m = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
  if (!m) fail('no value, or text after the timestamp');
  if (!FLOAT.test(m![1]!)) fail(`value ${m![1]} is not a float`);
  return { name, labels, value: toFloat(m![1]!), ...(m![2] ? { timestampMs: Number(m![2]) } : {}) };
}

/** A float as Go's ParseFloat reads the format's values (Inf spelled without "inity"). */
function toFloat(text: string): number {
  if (/^nan$/i.test(text)) return NaN;
  const inf = /^([+-]?)inf(?:inity)?$/i.exec(text);
  return inf ? (inf[1] === '-' ? -Infinity : Infinity) : parseFloat(text);
}

function unescape(text: string, quotes: boolean, n: number, line: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = text[i + 1];
    if (e === '\\') out += '\\';
    else if (e === 'n') out += '\n';
    else if (quotes && e === '"') out += '"';
    else throw new ExpositionError(n, line, `invalid escape \\${e ?? ''}`);
    i++;
  }
  return out;
}

/** The value of the one sample named `name` whose labels are exactly `labels`; undefined if none. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of families.values()) {
    if (!name.startsWith(f.name)) continue;
    for (const s of f.samples) if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value;
  }
  return undefined;
}
