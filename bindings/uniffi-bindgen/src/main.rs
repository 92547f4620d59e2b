//! `uniffi-bindgen generate --library target/<profile>/libguanxi_uniffi.so --language kotlin …`
fn main() {
    uniffi::uniffi_bindgen_main()
}
