// Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource): "500m", "1.5", "128Mi",
// "1e3", "2k". Held as an exact fraction so that Value() and MilliValue() round exactly as the
// API's do (up, to the next integer), and two quantities compare by amount ("1" == "1000m").

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const QUANTITY = /^([+-]?)(\d+\.?\d*|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

export class Quantity {
  /** The amount is num/den (den > 0). */
  private constructor(
    readonly num: bigint,
    readonly den: bigint,
  ) {}

  static readonly ZERO = new Quantity(0n, 1n);

  /** Parses a quantity; throws with the API's wording on a malformed one. */
  static parse(input: string | number): Quantity {
    const text = typeof input === 'number' ? numberText(input) : input.trim();
    const m = QUANTITY.exec(text);
    if (!m) throw new Error(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
    const [, sign, digits, suffix, exponent] = m;
    const [whole, frac = ''] = digits!.split('.');
    let num = BigInt((whole || '0') + frac) * (sign === '-' ? -1n : 1n);
    let den = 10n ** BigInt(frac.length);
    if (suffix !== undefined && suffix in BINARY) num *= 2n ** BigInt(BINARY[suffix]!);
    else {
      const exp = exponent !== undefined ? Number(exponent) : DECIMAL[suffix ?? '']!;
      if (Math.abs(exp) > 1000) throw new Error('quantity exponent is out of range');
      if (exp >= 0) num *= 10n ** BigInt(exp);
      else den *= 10n ** BigInt(-exp);
    }
    return new Quantity(num, den);
  }

  /** Whole units, rounded up (resource.Quantity.Value). */
  value(): number {
    return Number(ceilDiv(this.num, this.den));
  }

  /** Thousandths, rounded up (resource.Quantity.MilliValue). */
  milliValue(): number {
    return Number(ceilDiv(this.num * 1000n, this.den));
  }

  isZero(): boolean {
    return this.num === 0n;
  }

  sign(): number {
    return this.num === 0n ? 0 : this.num > 0n ? 1 : -1;
  }

  /** -1, 0, 1 as the amounts compare (resource.Quantity.Cmp). */
  cmp(other: Quantity): number {
    const a = this.num * other.den;
    const b = other.num * this.den;
    return a === b ? 0 : a < b ? -1 : 1;
  }

  add(other: Quantity): Quantity {
    return new Quantity(this.num * other.den + other.num * this.den, this.den * other.den);
  }

  max(other: Quantity): Quantity {
    return this.cmp(other) >= 0 ? this : other;
  }
}

function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a > 0n ? q + 1n : q;
}

/** A YAML number as the API would read it (JSON numbers are quantities too). */
function numberText(n: number): string {
  if (!Number.isFinite(n)) throw new Error('quantities must be finite');
  return String(n).replace('e+', 'e');
}

/** The quantity of `name` in a resource list, or undefined when it is not set. */
export function quantityOf(list: Record<string, string | number> | undefined, name: string): Quantity | undefined {
  const v = list?.[name];
  return v === undefined ? undefined : Quantity.parse(v);
}
