// The part of cli-progress (which ships no types) that lib/cli uses.
declare module "cli-progress" {
  interface BarOptions { format?: string; stream?: NodeJS.WritableStream; hideCursor?: boolean | null; etaBuffer?: number;
    clearOnComplete?: boolean; noTTYOutput?: boolean; fps?: number; etaAsynchronousUpdate?: boolean }
  class SingleBar {
    constructor(options: BarOptions, preset?: object);
    start(total: number, startValue: number, payload?: Record<string, unknown>): void;
    update(value: number, payload?: Record<string, unknown>): void;
    stop(): void;
  }
  const Presets: { shades_classic: object; legacy: object; rect: object };
  const cliProgress: { SingleBar: typeof SingleBar; Presets: typeof Presets };
  export default cliProgress;
}
