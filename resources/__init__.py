"""Icons, sample images, licences and other files the app ships."""
