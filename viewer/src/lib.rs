//! trelay-viewer library.
