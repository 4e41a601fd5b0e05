"""Bytes arriving: HTTP, torrents and the torrent recipe, the fetch strategy."""
