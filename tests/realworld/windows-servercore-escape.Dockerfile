# escape=`
# platform: windows/amd64

FROM mcr.microsoft.com/windows/servercore:ltsc2022

SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]

ENV GIT_VERSION=2.44.0 `
    GIT_SHA256=3f2c2c1f1e8b5c0f3ea3e3bfe8b5f1b0a7d8f5a0b4d7a5b3c6d5e4f3a2b1c0d9

RUN $url = ('https://github.com/git-for-windows/git/releases/download/v{0}.windows.1/MinGit-{0}-64-bit.zip' -f $env:GIT_VERSION); `
    Write-Host ('Downloading {0} ...' -f $url); `
    Invoke-WebRequest -Uri $url -OutFile 'git.zip'; `
    `
    Write-Host ('Verifying sha256 ({0}) ...' -f $env:GIT_SHA256); `
    if ((Get-FileHash git.zip -Algorithm sha256).Hash -ne $env:GIT_SHA256) { `
        Write-Host 'FAILED!'; `
        exit 1; `
    }; `
    `
    Expand-Archive -Path git.zip -DestinationPath C:\git\.; `
    Remove-Item git.zip -Force

WORKDIR C:\app
COPY . .
CMD ["cmd", "/S", "/C", "app.exe"]
