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
    /**
     * Internal (v5): queues `frame`, a whole BitTorrent message with its length prefix, as it is.
     * gitfs sends its extension messages through it while the wire's own (its handshakes) wait,
     * each built in one buffer with the extension id in place, because extended() copies each
     * payload to prepend that byte and pushes the header apart from it (docs/DEPENDENCIES.md).
     */
    _push(frame: Uint8Array): void;
    /**
     * Internal (streamx, which v5 is built on): `buffered` counts the bytes sent and not yet taken
     * by the socket the wire is piped to, which stops taking them when its own buffer is full.
     */
    readonly _readableState: { readonly buffered: number };
    /** Internal (v5): reads one whole message of the peer (after its length); its parsers may throw on hostile input. */
    _onMessage(buffer: Uint8Array): void;
    setKeepAlive(enable: boolean): void;
    destroy(error?: Error): this;
    on(event: 'handshake', listener: (infoHash: string, peerId: string, extensions: Record<string, boolean>) => void): this;
    on(event: 'extended', listener: (ext: string, payload: unknown) => void): this;
    on(event: 'close' | 'finish' | 'end', listener: () => void): this;
    on(event: 'error', listener: (e: Error) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
  export default Wire;
}
