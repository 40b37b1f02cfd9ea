/** The UAPI get=1 reply fixture shared by the codec and fuzz tests. */
export const PRIV_HEX = "a8dc0e9d0d5e4b1e8f36e5a0c1f1d0b1a2c3d4e5f60718293a4b5c6d7e8f9051";
export const PEER1_HEX = "b8dc0e9d0d5e4b1e8f36e5a0c1f1d0b1a2c3d4e5f60718293a4b5c6d7e8f9051";
export const PEER2_HEX = "c8dc0e9d0d5e4b1e8f36e5a0c1f1d0b1a2c3d4e5f60718293a4b5c6d7e8f9051";
export const PSK_HEX = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
export const ZERO = "0".repeat(64);

// Captured from wireguard-go 0.0.2023 (Debian 12) after a set, then extended with a second peer.
export const GET_REPLY = `private_key=${PRIV_HEX}
listen_port=51999
public_key=${PEER1_HEX}
preshared_key=${ZERO}
protocol_version=1
endpoint=[fd00::1]:51820
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=0
persistent_keepalive_interval=25
allowed_ip=10.100.0.2/32
allowed_ip=fd00::/64
allowed_ip=10.1.2.0/24
public_key=${PEER2_HEX}
preshared_key=${PSK_HEX}
protocol_version=1
endpoint=192.0.2.7:51820
last_handshake_time_sec=1764144000
last_handshake_time_nsec=250000000
tx_bytes=1184
rx_bytes=92
persistent_keepalive_interval=0
errno=0

`;
