"""Provisioning toolchain for ESP32 boards on Alibaba Cloud IoT Platform."""

__all__ = ["__version__"]

__version__ = "0.1.0"
