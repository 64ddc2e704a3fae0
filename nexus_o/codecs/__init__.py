"""Speech codecs behind one interface (built-in mel-RVQ + HiFi-GAN, FireFly GAN)."""
