use crate::helpers::TestApp;

/// Decodes a PNG QR code image back to its text.
fn decode_png(bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn the_qr_image_decodes_to_exactly_the_activation_code_without_a_key() {
    let app = TestApp::spawn().await;
    let p = app
        .provision(&app.partner.sandbox_key, "uk-massive-650")
        .await;
    let url = p["qr_code_url"].as_str().unwrap();
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(decode_png(&bytes), p["activation_code"].as_str().unwrap());

    let svg = app
        .client
        .get(url.replace(".png", ".svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    app.stop().await;
}

#[tokio::test]
async fn unknown_or_malformed_qr_urls_are_404() {
    let app = TestApp::spawn().await;
    let p = app.provision(&app.partner.sandbox_key, "uk-lite-10").await;
    let url = p["qr_code_url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap().trim_end_matches(".png");
    let mut wrong = token.to_owned();
    wrong.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    for path in [
        format!("/qr/{wrong}.png"),
        format!("/qr/{token}.gif"),
        format!("/qr/{token}"),
        "/qr/..%2F..%2Fetc%2Fpasswd.png".to_owned(),
        "/qr/x.png".to_owned(),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    app.stop().await;
}
