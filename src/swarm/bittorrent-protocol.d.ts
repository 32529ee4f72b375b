/** The part of bittorrent-protocol (webtorrent, v5) gitfs uses; the package ships no types. */
declare module 'bittorrent-protocol' {
  import { Duplex } from 'node:stream';

  interface ExtensionHandler {
    onHandshake?(infoHash: string, peerId: string, extensions: Record<string, boolean>): void;
    onExtendedHandshake?(handshake: Record<string, unknown>): void;
    onMessage?(buf: Uint8Array): void;
  }

  class Wire extends Duplex {
    constructor(type?: string);
    readonly destroyed: boolean;
    peerExtendedMapping: Record<string, number>;
    use(extension: { prototype: { name: string }; new (wire: Wire): ExtensionHandler }): void;
    handshake(infoHash: string | Uint8Array, peerId: string | Uint8Array, extensions?: Record<string, boolean>): void;
    extended(ext: string | number, payload: Uint8Array): void;
    /**
     * Internal (v5): sends message `id` with `numbers` as 4-byte integers, then `data` as it is.
     * gitfs sends its extension messages through it, with the extension id already in `data`,
     * because extended() copies each payload to prepend that byte (docs/DEPENDENCIES.md).
     */
    _message(id: number, numbers: readonly number[], data: Uint8Array): void;
    /**
     * Internal (streamx, which v5 is built on): `buffered` counts the bytes sent and not yet taken
     * by the socket the wire is piped to, which stops taking them when its own buffer is full.
     */
    readonly _readableState: { readonly buffered: number };
    setKeepAlive(enable: boolean): void;
    destroy(): this;
    on(event: 'handshake', listener: (infoHash: string, peerId: string, extensions: Record<string, boolean>) => void): this;
    on(event: 'extended', listener: (ext: string, payload: unknown) => void): this;
    on(event: 'close' | 'finish' | 'end', listener: () => void): this;
    on(event: 'error', listener: (e: Error) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
  export default Wire;
}
