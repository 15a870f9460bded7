// One pod's log stream for `rover logs --follow` on the kubernetes backend (cli/kubeLogs.ts):
// the client's Log class pipes the follow=true response into `sink`; this cuts it into whole
// lines, drops what the selection printed already, and remembers the last line, so a stream that
// breaks off (apiserver restart) can be opened again just after it.
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { compareStamps, ResumeAfter, splitTimedLog, type LogMark } from './kubeLogFormat.ts';

/** One pod's follow stream: whole lines, after the resume point, of the selected source. */
export class PodStream {
  controller: AbortController | undefined;
  readonly sink: Writable;
  /** The response ended or broke off (not by stop()): while the pod runs, open it again from `mark`. */
  closed = false;
  private stopping = false;
  private readonly resume: ResumeAfter;
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  static done(): PodStream {
    return new PodStream(undefined, () => false, () => undefined);
  }

  constructor(
    /** The last whole line seen, read or streamed. */
    public mark: LogMark | undefined,
    private readonly keep: (text: string) => boolean,
    private readonly print: (lines: string[]) => void,
  ) {
    this.resume = new ResumeAfter(mark);
    this.sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.take(this.partial + this.decoder.write(chunk));
        done();
      },
      final: (done) => {
        this.closed = !this.stopping;
        this.flush();
        done();
      },
    });
    // The response body reports a broken connection, and the abort of stop(), as an error.
    this.sink.on('pipe', (source) =>
      source.on('error', () => {
        if (!this.stopping) this.closed = true;
      }),
    );
  }

  private take(text: string): void {
    const end = text.lastIndexOf('\n') + 1;
    this.partial = text.slice(end);
    if (end > 0) this.printLines(text.slice(0, end - 1));
  }

  private printLines(text: string): void {
    const fresh = splitTimedLog(`${text}\n`).filter((l) => this.resume.accept(l));
    for (const { at } of fresh) {
      if (at) this.mark = this.mark && compareStamps(this.mark.at, at) === 0 ? { at, count: this.mark.count + 1 } : { at, count: 1 };
    }
    const lines = fresh.filter((l) => this.keep(l.text));
    if (lines.length > 0) this.print(lines.map((l) => l.text));
  }

  private flush(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (rest) this.printLines(rest);
  }

  stop(): void {
    this.stopping = true;
    this.controller?.abort();
    this.flush();
  }
}
