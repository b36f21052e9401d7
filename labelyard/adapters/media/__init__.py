"""The media adapter: decode images and video into frames, chunks, previews and meta, and
unpack uploaded archives safely. Pure functions over files and bytes; no database, no web."""
