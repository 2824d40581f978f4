# escape=`
# platform: windows/amd64
ARG WINDOWS_VERSION=ltsc2019
FROM mcr.microsoft.com/windows/servercore:${WINDOWS_VERSION}

SHELL ["powershell.exe", "-NoLogo", "-ExecutionPolicy", "Bypass", "-Command"]

# Install Chocolatey
RUN Set-ExecutionPolicy Bypass -Scope Process -Force; `
    [System.Net.ServicePointManager]::SecurityProtocol = [System.Net.ServicePointManager]::SecurityProtocol -bor 3072; `
    iex ((New-Object System.Net.WebClient).DownloadString('https://community.chocolatey.org/install.ps1'))

RUN choco install -y `
      git `
      7zip `
      nodejs-lts `
    ; `
    Remove-Item -Recurse -Force $env:TEMP\*

ENV NODE_OPTIONS=--max-old-space-size=4096
WORKDIR C:\workspace
CMD ["powershell.exe"]
