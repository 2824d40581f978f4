FROM mcr.microsoft.com/powershell:lts-alpine-3.17
SHELL ["pwsh", "-Command"]
RUN Write-Host 'installing'
# With SHELL set, shell-form CMD/ENTRYPOINT are not flagged.
ENTRYPOINT Write-Host 'starting'; ./start.ps1
CMD -NoLogo
