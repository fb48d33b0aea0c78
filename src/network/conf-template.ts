// containerd's cni conf_template is a Go text/template with three values: .PodCIDR (the first
// CIDR), .PodCIDRRanges (all of them) and .Routes (0.0.0.0/0 and/or ::/0, one per family).
// Its documented dual-stack form, which node images ship (AKS's kubenet template, for one), is
//   "ranges": [{{range $i, $range := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$range}}"}]{{end}}],
//   "routes": [{{range $i, $route := .Routes}}{{if $i}}, {{end}}{"dst": "{{$route}}"}{{end}}]
// This renders the part of text/template such templates use: {{.Field}}, {{$var}}, {{.}},
// {{range [$i, ]$v := .List}} / {{range .List}}, {{if X}} / {{else}}, {{end}}, comments and the
// {{- / -}} trim markers. Any other action is refused by name (nothing half-rendered is written).
import { isIP } from 'node:net';

export interface TemplateValues {
  PodCIDR: string;
  PodCIDRRanges: string[];
  Routes: string[];
}

type Value = string | number | string[];
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'print'; expr: string }
  | { kind: 'range'; index?: string; elem?: string; list: string; body: Node[] }
  | { kind: 'if'; cond: string; then: Node[]; else: Node[] };

/** A bad template: the action (or problem) is in the message. */
export class TemplateError extends Error {}

/** The values of a pod CIDR list, as containerd computes them (routes: one default per family). */
export function templateValues(cidrs: string[]): TemplateValues {
  const routes: string[] = [];
  if (cidrs.some((c) => isIP(c.split('/')[0]!) === 4)) routes.push('0.0.0.0/0');
  if (cidrs.some((c) => isIP(c.split('/')[0]!) === 6)) routes.push('::/0');
  return { PodCIDR: cidrs[0] ?? '', PodCIDRRanges: cidrs, Routes: routes };
}

export function renderConfTemplate(text: string, values: TemplateValues): string {
  const nodes = parse(tokenize(text));
  return render(nodes, values, new Map(), undefined);
}

type Token = { kind: 'text'; text: string } | { kind: 'action'; action: string; raw: string };

/** Text and actions, with the trim markers applied to the neighbouring text. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /\{\{(-\s)?([\s\S]*?)(\s-)?\}\}/g;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let before = text.slice(last, m.index);
    if (trimNext) before = before.trimStart();
    if (m[1]) before = before.trimEnd();
    if (before) tokens.push({ kind: 'text', text: before });
    tokens.push({ kind: 'action', action: m[2]!.trim(), raw: m[0] });
    trimNext = !!m[3];
    last = m.index + m[0].length;
  }
  let rest = text.slice(last);
  if (trimNext) rest = rest.trimStart();
  if (rest.includes('{{')) throw new TemplateError(`unclosed action at "${rest.slice(rest.indexOf('{{'), rest.indexOf('{{') + 30)}"`);
  if (rest) tokens.push({ kind: 'text', text: rest });
  return tokens;
}

const VAR = String.raw`\$[A-Za-z_][A-Za-z0-9_]*`;
const FIELD = String.raw`\.[A-Za-z_][A-Za-z0-9_]*`;
const OPERAND = new RegExp(`^(?:${VAR}|${FIELD}|\\.)$`);
const RANGE = new RegExp(`^range\\s+(?:(?:(${VAR})\\s*,\\s*)?(${VAR})\\s*:=\\s*)?(${FIELD})$`);
const IF = new RegExp(`^if\\s+(${VAR}|${FIELD}|\\.)$`);

function parse(tokens: Token[]): Node[] {
  let pos = 0;
  /** Nodes up to an {{end}} or {{else}} (returned), or the end of input (closer undefined). */
  const block = (): { nodes: Node[]; closer?: 'end' | 'else'; raw?: string } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const tok = tokens[pos++]!;
      if (tok.kind === 'text') {
        nodes.push(tok);
        continue;
      }
      const a = tok.action;
      if (a === 'end' || a === 'else') return { nodes, closer: a, raw: tok.raw };
      if (a.startsWith('/*') && a.endsWith('*/')) continue;
      let m: RegExpExecArray | null;
      if (OPERAND.test(a)) {
        nodes.push({ kind: 'print', expr: a });
      } else if ((m = RANGE.exec(a))) {
        const body = block();
        if (body.closer !== 'end') throw new TemplateError(`${tok.raw} has no {{end}}`);
        nodes.push({ kind: 'range', ...(m[1] ? { index: m[1] } : {}), ...(m[2] ? { elem: m[2] } : {}), list: m[3]!, body: body.nodes });
      } else if ((m = IF.exec(a))) {
        const then = block();
        let other: Node[] = [];
        if (then.closer === 'else') {
          const e = block();
          if (e.closer !== 'end') throw new TemplateError(`${tok.raw} has no {{end}}`);
          other = e.nodes;
        } else if (then.closer !== 'end') {
          throw new TemplateError(`${tok.raw} has no {{end}}`);
        }
        nodes.push({ kind: 'if', cond: m[1]!, then: then.nodes, else: other });
      } else {
        throw new TemplateError(`unsupported action ${tok.raw} (supported: {{.PodCIDR}}, {{range $i, $v := .PodCIDRRanges}} or .Routes, {{if $i}}, {{else}}, {{end}}, {{$v}})`);
      }
    }
    return { nodes };
  };
  const top = block();
  if (top.closer) throw new TemplateError(`${top.raw} without an opening {{range}} or {{if}}`);
  return top.nodes;
}

function lookup(expr: string, values: TemplateValues, vars: Map<string, Value>, dot: Value | undefined): Value {
  if (expr === '.') {
    if (dot === undefined) throw new TemplateError('{{.}} outside a {{range}}');
    return dot;
  }
  if (expr.startsWith('$')) {
    const v = vars.get(expr);
    if (v === undefined) throw new TemplateError(`undefined variable ${expr}`);
    return v;
  }
  const name = expr.slice(1);
  if (!Object.hasOwn(values, name)) throw new TemplateError(`unknown field ${expr} (known: .PodCIDR, .PodCIDRRanges, .Routes)`);
  return values[name as keyof TemplateValues];
}

function render(nodes: Node[], values: TemplateValues, vars: Map<string, Value>, dot: Value | undefined): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'print') {
      const v = lookup(n.expr, values, vars, dot);
      // As Go prints a []string: [a b].
      out += Array.isArray(v) ? `[${v.join(' ')}]` : String(v);
    } else if (n.kind === 'if') {
      const v = lookup(n.cond, values, vars, dot);
      const truthy = Array.isArray(v) ? v.length > 0 : typeof v === 'number' ? v !== 0 : v !== '';
      out += render(truthy ? n.then : n.else, values, vars, dot);
    } else {
      const list = lookup(n.list, values, vars, dot);
      if (!Array.isArray(list)) throw new TemplateError(`{{range ${n.list}}}: not a list`);
      list.forEach((elem, i) => {
        const inner = new Map(vars);
        if (n.index) inner.set(n.index, i);
        if (n.elem) inner.set(n.elem, elem);
        out += render(n.body, values, inner, elem);
      });
    }
  }
  return out;
}
